"""The world's video VAE: a small diffusers `AutoencoderKLCogVideoX` (4x space, 4x time) trained on world clips.

A 64 x 64 x 17 clip becomes a (5, C, 16, 16) latent, as the pipeline expects of any CogVideoX VAE. Training has
two phases on freshly rendered data (identities of the `train` split, never the evaluation ones):

1. images: single frames and reference face crops (the pipeline VAE-encodes the face crop as one frame), which
   teaches the spatial path cheaply;
2. clips: 9-frame windows on 32 x 32 crops (the temporal path, cheaply), then both again on full 64 x 64 frames;
3. full: whole 17-frame clips, the exact chunking the pipeline uses at inference (9 + 8 frames encoded, 3 + 2
   latent frames decoded, with the conv cache between chunks).

Loss: L1 + MSE on pixels, L1 on image gradients (keeps edges and 1-pixel marks sharp), and a small KL. The latent
scaling factor is set at the end to 1 / std of the latents of held-out clips, like Stable Diffusion's. Checkpoints
(model, optimiser, step) are written atomically every `checkpoint_every` steps and a run resumes from them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .traits import DEFAULT_WORLD_SEED, SPLITS

logger = logging.getLogger("proteus_id")

VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(16, 32, 32), layers_per_block=1,
    norm_num_groups=8, temporal_compression_ratio=4, sample_height=64, sample_width=64,
    down_block_types=("CogVideoXDownBlock3D",) * 3, up_block_types=("CogVideoXUpBlock3D",) * 3,
    use_quant_conv=False, use_post_quant_conv=False, scaling_factor=1.0,
)


@dataclass
class VAETrainConfig:
    # (name, steps, batch, frames, crop): CPU time is scarce, so the first steps see single frames or 9-frame clips
    # on random 32 x 32 crops (cheap; GroupNorm statistics of crops are close to full frames', as with Stable
    # Diffusion's VAEs trained on crops), then full 64 x 64 frames and 9-frame clips, and the last phase whole
    # 17-frame clips exactly as inferred (two encoder chunks with the conv cache between them).
    phases: tuple = (("images", 1500, 8, 1, 32), ("clips", 900, 2, 9, 32), ("images64", 800, 6, 1, None),
                     ("clips64", 800, 2, 9, None), ("full", 60, 1, 17, None))
    lr: float = 1e-3
    kl_weight: float = 1e-4
    gradient_weight: float = 0.5
    seed: int = 1
    world_seed: int = DEFAULT_WORLD_SEED
    checkpoint_every: int = 50
    log_every: int = 10


def build_vae(**overrides):
    from diffusers import AutoencoderKLCogVideoX

    return AutoencoderKLCogVideoX(**{**VAE_CONFIG, **overrides})


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float (3, F, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """float (3, F, H, W) in [-1, 1] -> uint8 (F, H, W, 3)."""
    return video.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 3, 0).numpy()


class WorldSampler:
    """Random world data for the VAE: clips, single frames and reference crops of `train`-split identities."""

    def __init__(self, seed: int, world_seed: int = DEFAULT_WORLD_SEED, split: str = "train"):
        self.rng = np.random.default_rng(seed)
        self.world_seed = world_seed
        self.start, self.stop = SPLITS[split]

    def _clip(self):
        from .world import make_clip, render_clip

        number = int(self.rng.integers(self.start, self.stop))
        return render_clip(make_clip(number, int(self.rng.integers(0, 1000)), self.world_seed))

    def clips(self, batch: int, frames: int = 17) -> torch.Tensor:
        """(B, 3, frames, H, W): a random window of `frames` frames of random clips."""
        out = []
        for _ in range(batch):
            video = self._clip().frames
            start = int(self.rng.integers(0, len(video) - frames + 1))
            out.append(to_tensor(video[start : start + frames]))
        return torch.stack(out)

    def images(self, batch: int) -> torch.Tensor:
        """Half reference crops, half frames from random clips; (B, 3, 1, H, W)."""
        from .traits import sample_identity
        from .world import render_reference

        out = []
        for k in range(batch):
            if k % 2 == 0:
                identity = sample_identity(int(self.rng.integers(self.start, self.stop)), self.world_seed)
                frame = np.asarray(render_reference(identity, int(self.rng.integers(0, 1000)), world_seed=self.world_seed))
            else:
                frames = self._clip().frames
                frame = frames[int(self.rng.integers(len(frames)))]
            out.append(to_tensor(frame[None]))
        return torch.stack(out)

    def crop(self, x: torch.Tensor, size: int | None) -> torch.Tensor:
        """The same random spatial window of every frame of each sample."""
        if size is None or size >= x.shape[-1]:
            return x
        out = []
        for sample in x:
            top, left = (int(v) for v in self.rng.integers(0, x.shape[-1] - size + 1, size=2))
            out.append(sample[..., top : top + size, left : left + size])
        return torch.stack(out)


def vae_loss(vae, x: torch.Tensor, cfg: VAETrainConfig, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
    posterior = vae.encode(x).latent_dist
    z = posterior.sample(generator=generator)
    y = vae.decode(z).sample
    l1, mse = (y - x).abs().mean(), F.mse_loss(y, x)
    grad = sum(((y.diff(dim=d) - x.diff(dim=d)).abs().mean()) for d in (3, 4))
    # KL to N(0, 1) per latent element (diffusers' .kl() sums over only some axes of 5-D latents)
    kl = 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean()
    loss = l1 + mse + cfg.gradient_weight * grad + cfg.kl_weight * kl
    return loss, {k: float(v.detach()) for k, v in (("l1", l1), ("mse", mse), ("grad", grad), ("kl", kl))}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(a.clamp(-1, 1), b.clamp(-1, 1)).item()
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


@torch.no_grad()
def evaluate_vae(vae, num_clips: int = 24, split: str = "eval", world_seed: int = DEFAULT_WORLD_SEED) -> dict:
    """Reconstruction PSNR (posterior mean) on clips and reference crops of `split` identities (never trained on),
    and the latent std that sets the scaling factor."""
    from .traits import identity_numbers, sample_identity
    from .world import make_clip, render_clip, render_reference

    vae.eval()
    numbers = identity_numbers(split, min(num_clips, SPLITS[split][1] - SPLITS[split][0]))
    clip_psnr, crop_psnr, latents = [], [], []
    for k, number in enumerate(numbers):
        x = to_tensor(render_clip(make_clip(number, 7_000 + k, world_seed)).frames)[None]
        z = vae.encode(x).latent_dist.mode()
        latents.append(z)
        clip_psnr.append(psnr(vae.decode(z).sample, x))
        crop = to_tensor(np.asarray(render_reference(sample_identity(number, world_seed), 7_000 + k))[None])[None]
        crop_psnr.append(psnr(vae.decode(vae.encode(crop).latent_dist.mode()).sample, crop))
    z = torch.cat(latents)
    return {"clip_psnr_db": float(np.mean(clip_psnr)), "crop_psnr_db": float(np.mean(crop_psnr)),
            "latent_std": float(z.std()), "latent_mean": float(z.mean()), "clips": len(numbers), "split": split}


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_vae(out_dir: str | Path, cfg: VAETrainConfig, progress: bool = True) -> Path:
    """Train (or resume) the VAE in `out_dir`; writes checkpoint.pt during training, losses.jsonl, and at the end
    the diffusers folder `out_dir/vae` with the measured scaling factor and `out_dir/vae_metrics.json`."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vae_train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    torch.manual_seed(cfg.seed)
    vae = build_vae()
    optimiser = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    step, ckpt = 0, out / "checkpoint.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        vae.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step = state["step"]
        logger.info("resuming the VAE from step %d", step)
    phases = [tuple(p) for p in cfg.phases]
    total = sum(p[1] for p in phases)
    sampler = WorldSampler(cfg.seed * 1_000_003 + step, cfg.world_seed)  # new data after a resume, no repeats
    generator = torch.Generator().manual_seed(cfg.seed + step)
    vae.train()
    bar = tqdm(total=total, initial=step, desc="vae", disable=not progress)
    with open(out / "losses.jsonl", "a") as log:
        while step < total:
            ends = np.cumsum([p[1] for p in phases])
            index = int(np.searchsorted(ends, step, side="right"))
            name, length, batch, frames, crop = phases[index]
            phase_step = step - (ends[index] - length)
            x = sampler.images(batch) if frames == 1 else sampler.clips(batch, frames)
            x = sampler.crop(x, crop)
            for group in optimiser.param_groups:  # cosine decay within each phase
                group["lr"] = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * phase_step / max(1, length))))
            started = time.time()
            loss, parts = vae_loss(vae, x, cfg, generator)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            optimiser.step()
            step += 1
            bar.update()
            if step % cfg.log_every == 0 or step == total:
                record = {"step": step, "phase": name, "loss": float(loss), "seconds": round(time.time() - started, 2),
                          "psnr_db": 10 * math.log10(4.0 / max(parts["mse"], 1e-12)), **parts}
                log.write(json.dumps(record) + "\n")
                log.flush()
            if step % cfg.checkpoint_every == 0 or step == total:
                _save_atomic({"model": vae.state_dict(), "optimiser": optimiser.state_dict(), "step": step}, ckpt)
    bar.close()
    return finalise_vae(vae, out, cfg.world_seed)


def finalise_vae(vae, out: Path, world_seed: int = DEFAULT_WORLD_SEED) -> Path:
    """Measure on held-out identities, set the scaling factor, save the diffusers folder out/vae."""
    metrics = evaluate_vae(vae, split="judge_val", world_seed=world_seed)
    vae.register_to_config(scaling_factor=round(1.0 / metrics["latent_std"], 5))
    metrics = {"held_out": metrics, "eval_identities": evaluate_vae(vae, num_clips=48, split="eval", world_seed=world_seed),
               "scaling_factor": vae.config.scaling_factor, "parameters": sum(p.numel() for p in vae.parameters())}
    vae.save_pretrained(out / "vae")
    (out / "vae_metrics.json").write_text(json.dumps(metrics, indent=2))
    logger.info("VAE: clip PSNR %.2f dB, crop PSNR %.2f dB on evaluation identities; scaling factor %.4f",
                metrics["eval_identities"]["clip_psnr_db"], metrics["eval_identities"]["crop_psnr_db"], vae.config.scaling_factor)
    return out / "vae"


@dataclass
class DecoderTuneConfig:
    # (name, steps, batch, frames): full-resolution clips only; 17-frame clips exercise the inference chunking
    phases: tuple = (("clips64", 300, 2, 9), ("full", 150, 1, 17))
    # Gaussian noise added to the latents the decoder sees, sigma uniform in [0, latent_noise x that sample's latent
    # std]: a sampler's last step leaves a little noise in the latents, which a decoder trained on clean posteriors
    # turns into speckle; trained on noisy ones it renders them smooth (at some cost in the finest detail).
    latent_noise: float = 0.0
    eval_clips: int = 48  # clips of the evaluation identities the closing PSNR is measured on
    lr: float = 3e-4
    gradient_weight: float = 0.5
    seed: int = 2
    world_seed: int = DEFAULT_WORLD_SEED
    checkpoint_every: int = 50
    log_every: int = 10


def finetune_decoder(out_dir: str | Path, vae_dir: str | Path, cfg: DecoderTuneConfig, progress: bool = True) -> Path:
    """Train only the decoder of a finished VAE. The encoder (and so the latent space, the feature caches made
    with it and any transformer trained on them) stays exactly the same; the decoder gets sharper. Resumable."""
    from diffusers import AutoencoderKLCogVideoX
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decoder_tune_config.json").write_text(json.dumps({**asdict(cfg), "vae": str(vae_dir)}, indent=2))
    vae = AutoencoderKLCogVideoX.from_pretrained(vae_dir)
    vae.encoder.requires_grad_(False)
    params = [p for n, p in vae.named_parameters() if not n.startswith("encoder.") and not n.startswith("quant_conv")]
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    step, ckpt = 0, out / "decoder_checkpoint.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        vae.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step = state["step"]
    phases = [tuple(p) for p in cfg.phases]
    total = sum(p[1] for p in phases)
    ends = np.cumsum([p[1] for p in phases])
    sampler = WorldSampler(cfg.seed * 1_000_003 + step, cfg.world_seed)
    generator = torch.Generator().manual_seed(cfg.seed + step)
    vae.decoder.train()
    bar = tqdm(total=total, initial=step, desc="vae decoder", disable=not progress)
    with open(out / "decoder_losses.jsonl", "a") as log:
        while step < total:
            index = int(np.searchsorted(ends, step, side="right"))
            name, length, batch, frames = phases[index]
            for group in optimiser.param_groups:
                group["lr"] = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - (ends[index] - length)) / length)))
            x = sampler.clips(batch, frames)
            started = time.time()
            with torch.no_grad():
                z = vae.encode(x).latent_dist.sample(generator=generator)
                if cfg.latent_noise > 0:
                    spread = z.flatten(1).std(dim=1).view(-1, 1, 1, 1, 1)
                    sigma = torch.rand(z.shape[0], 1, 1, 1, 1, generator=generator) * cfg.latent_noise * spread
                    z = z + sigma * torch.randn(z.shape, generator=generator)
            y = vae.decode(z).sample
            mse = F.mse_loss(y, x)
            grad = sum(((y.diff(dim=d) - x.diff(dim=d)).abs().mean()) for d in (3, 4))
            loss = (y - x).abs().mean() + mse + cfg.gradient_weight * grad
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            step += 1
            bar.update()
            if step % cfg.log_every == 0 or step == total:
                log.write(json.dumps({"step": step, "phase": name, "loss": float(loss.detach()),
                                      "psnr_db": 10 * math.log10(4.0 / max(float(mse.detach()), 1e-12)),
                                      "seconds": round(time.time() - started, 2)}) + "\n")
                log.flush()
            if step % cfg.checkpoint_every == 0 or step == total:
                _save_atomic({"model": vae.state_dict(), "optimiser": optimiser.state_dict(), "step": step}, ckpt)
    bar.close()
    vae.eval()
    metrics = {"eval_identities": evaluate_vae(vae, num_clips=cfg.eval_clips, split="eval",
                                                   world_seed=cfg.world_seed),
               "scaling_factor": vae.config.scaling_factor, "decoder_only_from": str(vae_dir)}
    vae.save_pretrained(out / "vae")
    (out / "vae_metrics.json").write_text(json.dumps(metrics, indent=2))
    return out / "vae"
