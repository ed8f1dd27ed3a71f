"""What the trainer needs to know about the model, in one place (the finetrainers idea of a model specification).

The trainer (trainer.py) only calls these methods; another model trains by writing another spec:

    load_model()                         the trainable network
    set_trainable(model, mode)           which parameters learn: full / lora / new_modules
    latents(batch, rng)                  clean latents x0 (a posterior draw from the cached mean and std)
    conditions(batch, rng)               every other model input, with the release's noise and dropouts
    forward(model, noisy, t, conds)      the network's prediction
    loss(batch, pred, noisy, x0, t, rng) the training objective (loss.py, AML)

All random draws use the `rng` generator the trainer passes (one per process, saved in checkpoints), so a resumed run
draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import logging

import torch

from ..errors import UserError
from .config import ConfigError, TrainConfig
from .loss import motion_contrast_error, per_element_loss, reduce_loss, relative_motion_error, x0_prediction
from .motion_weight import expand_over_channels

logger = logging.getLogger("proteus_id")

# The modules Proteus-ID adds to CogVideoX (MIF, its adapter, TAII, the injection cross-attentions).
NEW_MODULES = ("fuse_token_former", "fuse_token_adapter", "fuse_facital_attention", "perceiver_cross_attention")
# In the released checkpoint but never used by the forward (PAPER.md appendix): frozen, so that DDP does not wait
# for their gradients (the release needed find_unused_parameters=True, a graph search every step).
UNUSED_PARAMETERS = ("fuse_facital_attention.latents", "fuse_facital_attention.proj_out.")


def _first_readable(cache) -> dict | None:
    from safetensors import SafetensorError

    for index in range(len(cache)):
        try:
            return cache.load(index)
        except (OSError, ValueError, RuntimeError, SafetensorError):
            continue
    return None


def _uniform(rng: torch.Generator, n: int) -> torch.Tensor:
    return torch.rand(n, generator=rng)


class ProteusIDSpec:
    def __init__(self, config: TrainConfig, device: torch.device):
        from diffusers import CogVideoXDPMScheduler

        from ..pipeline.folder import inspect_model_folder

        self.config, self.device = config, device
        folder = inspect_model_folder(config.model)
        for name in ("scheduler", "vae", "transformer"):
            if name not in folder.found:
                raise UserError(f"model folder {config.model} has no {name}/ (the trainer needs its config)")
        self.folder = folder
        self.scheduler = CogVideoXDPMScheduler.from_pretrained(folder.found["scheduler"])
        if self.scheduler.config.prediction_type != "v_prediction":
            raise UserError(f"the loss expects a v-prediction scheduler; {folder.found['scheduler']} has "
                            f"{self.scheduler.config.prediction_type!r}")
        total, start = self.scheduler.config.num_train_timesteps, config.loss.late_timestep_from
        if config.loss.late_timestep_fraction > 0 and start >= total:
            raise ConfigError(f"config key 'loss.late_timestep_from' must be below the scheduler's {total} timesteps, got {start}")
        end = config.loss.late_timestep_to
        if end is not None and not start < end <= total:
            raise ConfigError(f"config key 'loss.late_timestep_to' must be above 'loss.late_timestep_from' ({start}) "
                              f"and at most the scheduler's {total} timesteps, got {end}")
        vae_config = json.loads((folder.found["vae"] / "config.json").read_text())
        self.vae_spatial = 2 ** (len(vae_config["block_out_channels"]) - 1)
        self.transformer_config = json.loads((folder.found["transformer"] / "config.json").read_text())
        self._rotary: dict = {}
        self._identity_loss = None
        if config.loss.identity_weight:  # loaded now, so a model without a differentiable face encoder fails at once
            from .identity_loss import load_identity_feature_loss

            self._identity_loss = load_identity_feature_loss(folder, device)

    # ------------------------------------------------------------------ model

    def load_model(self) -> torch.nn.Module:
        from ..model.transformer import ProteusIDTransformer3DModel

        return ProteusIDTransformer3DModel.from_pretrained(self.folder.found["transformer"], torch_dtype=torch.float32)

    def set_trainable(self, model: torch.nn.Module, mode: str) -> None:
        model.requires_grad_(mode == "full")
        if mode in ("new_modules", "lora"):
            for name in NEW_MODULES:
                module = getattr(model, name, None)
                if module is not None:
                    module.requires_grad_(True)
        if mode == "lora":
            from ..errors import require

            peft = require("peft", "train", "LoRA training")
            targets = "|".join(t.replace(".", r"\.") for t in self.config.lora.target_modules)
            # only the DiT blocks get adapters; the new modules train fully (as the release's LoRA option)
            model.add_adapter(peft.LoraConfig(
                r=self.config.lora.rank, lora_alpha=self.config.lora.alpha, init_lora_weights=True,
                target_modules=rf"^transformer_blocks\.\d+\..*({targets})$",
            ))
        for name, parameter in model.named_parameters():
            if name.startswith(UNUSED_PARAMETERS):
                parameter.requires_grad_(False)

    def check_cache(self, cache) -> None:
        """The cache must have been made for this model's sizes (channels, text width, identity features)."""
        s, cfg = cache.settings, self.transformer_config
        problems = []
        if s.get("latent_channels") != cfg["in_channels"] // 2:  # noisy latents + image-condition latents
            problems.append(f"latents have {s.get('latent_channels')} channels, the transformer takes 2 x {cfg['in_channels'] // 2}")
        if s.get("text_dim") != cfg["text_embed_dim"]:
            problems.append(f"text embeddings are {s.get('text_dim')}-d, the transformer needs {cfg['text_embed_dim']}-d")
        if s.get("max_text_length") != cfg.get("max_text_seq_length", 226):
            problems.append(f"prompts were encoded to {s.get('max_text_length')} tokens, the transformer uses "
                            f"{cfg.get('max_text_seq_length', 226)}")
        item = _first_readable(cache)  # an unreadable item is the data loop's to count, not a crash here
        if len(cache) == 0:
            problems.append("it holds no item")
        elif item is None:
            problems.append("none of its items is readable")
        else:
            if item["id_cond"].shape[-1] != cfg["FT_clip_dim"]:
                problems.append(f"id_cond is {item['id_cond'].shape[-1]}-d, the transformer needs {cfg['FT_clip_dim']}-d")
        if problems:
            raise UserError(f"feature cache {cache.root} does not fit model {self.config.model}: " + "; ".join(problems))
        from ..identity.features import SPEC_FILE, IdentitySpec
        from .features import model_fingerprint

        if (self.folder.root / "face_encoder" / SPEC_FILE).is_file():
            kind = IdentitySpec.for_model(self.folder.root).kind
            if s.get("face_backend") != kind:
                logger.warning("the cache's face features come from the '%s' backend but %s generates with '%s': "
                               "training and inference will see different identity features",
                               s.get("face_backend"), self.config.model, kind)

        if s.get("model_fingerprint") != model_fingerprint(self.config.model):
            raise UserError(f"feature cache {cache.root} was made with another VAE / text encoder / tokenizer than "
                            f"{self.config.model}; rerun proteus-id precompute with this model into a new folder")

    # ------------------------------------------------------------------ inputs

    def latents(self, batch: dict, rng: torch.Generator) -> torch.Tensor:
        mean = batch["latents_mean"].float()
        latents = mean
        if "latents_std" in batch:
            eps = torch.randn(mean.shape, generator=rng)
            latents = mean + batch["latents_std"].float() * eps.to(mean.device)
        return self._pad_frames(latents)

    def _pad_frames(self, latents: torch.Tensor) -> torch.Tensor:
        p_t = self.transformer_config.get("patch_size_t")
        if p_t and latents.shape[1] % p_t:  # CogVideoX 1.5: the first frame repeated in front, as the release
            latents = torch.cat([latents[:, :1].repeat(1, latents.shape[1] % p_t, 1, 1, 1), latents], dim=1)
        return latents

    def _image_sigma(self, batch_size: int, rng: torch.Generator) -> torch.Tensor:
        c = self.config.conditioning
        return torch.exp(torch.randn(batch_size, generator=rng) * c.image_noise_log_std + c.image_noise_log_mean)

    def _noised_image_latents(self, batch: dict, rng: torch.Generator) -> torch.Tensor:
        """Latent space (default): the cached face-crop posterior, drawn, plus sigma * noise with the release's sigma
        distribution. The release noised the pixels before the VAE; the cache holds the posterior (docs/training.md)."""
        image = batch["image_latents_mean"].float()
        if "image_latents_std" in batch:
            image = image + batch["image_latents_std"].float() * torch.randn(image.shape, generator=rng).to(image.device)
        sigma = self._image_sigma(image.shape[0], rng).view(-1, 1, 1, 1, 1).to(image.device)
        return image + sigma * torch.randn(image.shape, generator=rng).to(image.device)

    @torch.no_grad()
    def _noised_image_latents_pixel(self, batch: dict, rng: torch.Generator) -> torch.Tensor:
        """The release's way: noise on the face crop's pixels (resized to the frame size), then a VAE posterior draw."""
        from diffusers.video_processor import VideoProcessor
        from PIL import Image

        vae = self._vae()
        height, width = (s * self.vae_spatial for s in batch["latents_mean"].shape[-2:])
        processor = VideoProcessor(vae_scale_factor=self.vae_spatial)
        pixels = torch.cat([processor.preprocess(Image.fromarray(crop.cpu().numpy()), height=height, width=width)
                            for crop in batch["face_crops"]])
        sigma = self._image_sigma(pixels.shape[0], rng).view(-1, 1, 1, 1)
        noisy = pixels + sigma * torch.randn(pixels.shape, generator=rng)
        factor = vae.config.scaling_factor
        scale = 1.0 / factor if getattr(vae.config, "invert_scale_latents", False) else factor
        draws = [vae.encode(image[None, :, None].to(self.device, vae.dtype)).latent_dist.sample(generator=rng) for image in noisy]
        return (torch.cat(draws) * scale).permute(0, 2, 1, 3, 4).float()

    def _vae(self):
        if getattr(self, "_vae_model", None) is None:
            from ..pipeline.folder import load_vae

            self._vae_model = load_vae(self.folder, None).to(self.device).eval().requires_grad_(False)
        return self._vae_model

    def conditions(self, batch: dict, rng: torch.Generator, num_frames: int) -> dict:
        c = self.config.conditioning
        if c.image_noise_space == "pixel":
            image = self._noised_image_latents_pixel(batch, rng)
        else:
            image = self._noised_image_latents(batch, rng)
        batch_size = image.shape[0]
        keep_image = (_uniform(rng, batch_size) >= c.image_dropout).to(image.device)
        image = image * keep_image.view(-1, 1, 1, 1, 1).to(image.dtype)
        image_latents = torch.cat([image, image.new_zeros(batch_size, num_frames - 1, *image.shape[2:])], dim=1)

        drop_prompt = (_uniform(rng, batch_size) < c.prompt_dropout).to(batch["prompt_embeds"].device)
        prompt, mask = self.captions(batch, drop_prompt)
        identity = batch["identity_prompt_embeds"].float()
        drop_identity = (_uniform(rng, batch_size) < c.identity_prompt_dropout).to(identity.device)
        if drop_identity.any():
            null_identity = batch["null_identity_prompt_embeds"].float().expand_as(identity)
            identity = torch.where(drop_identity.view(-1, 1, 1), null_identity, identity)
        return {
            "image_latents": image_latents, "encoder_hidden_states": prompt, "encoder_hidden_mask": mask,
            "identity_prompt_embeds": identity, "id_cond": batch["id_cond"].float(),
            "id_vit_hidden": [h.float() for h in batch["id_vit_hidden"]], "prompt_dropped": drop_prompt,
        }

    @staticmethod
    def captions(batch: dict, drop_prompt: torch.Tensor, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """The caption embeddings and mask of `batch` (prefix "partner." for the motion partners'), with the rows in
        `drop_prompt` replaced by the empty prompt."""
        prompt, mask = batch[f"{prefix}prompt_embeds"].float(), batch[f"{prefix}prompt_mask"]
        if drop_prompt.any():
            prompt = torch.where(drop_prompt.view(-1, 1, 1), batch["null_prompt_embeds"].float().expand_as(prompt), prompt)
            mask = torch.where(drop_prompt.view(-1, 1), batch["null_prompt_mask"].expand_as(mask), mask)
        return prompt, mask

    def rotary(self, num_frames: int, height: int, width: int, model_config):
        """The 3D RoPE tables the pipeline would build for this latent grid (the pipeline's own function)."""
        from types import SimpleNamespace

        from ..pipeline.pipeline import ProteusIDPipeline

        key = (num_frames, height, width)
        if key not in self._rotary:
            holder = SimpleNamespace(transformer=SimpleNamespace(config=model_config), vae_scale_factor_spatial=self.vae_spatial)
            tables = ProteusIDPipeline.rotary_embeddings(
                holder, height * self.vae_spatial, width * self.vae_spatial, num_frames, self.device)
            self._rotary[key] = tables
        return self._rotary[key]

    # ------------------------------------------------------------------ step

    def sample_timesteps(self, batch_size: int, rng: torch.Generator) -> torch.Tensor:
        """Uniform over [0, T) as the release; with loss.late_timestep_fraction f > 0, each timestep is replaced with
        probability f by a uniform draw from [late_timestep_from, late_timestep_to or T) (extra draws only then, so the
        default stream is the release's)."""
        total = self.scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, total, (batch_size,), generator=rng)
        fraction, start = self.config.loss.late_timestep_fraction, self.config.loss.late_timestep_from
        if fraction > 0:
            late = torch.randint(start, self.config.loss.late_timestep_to or total, (batch_size,), generator=rng)
            timesteps = torch.where(_uniform(rng, batch_size) < fraction, late, timesteps)
        return timesteps.to(self.device)

    def forward(self, model, noisy_latents: torch.Tensor, timesteps: torch.Tensor, conds: dict, model_config):
        batch_size, num_frames, _, height, width = noisy_latents.shape
        hidden = torch.cat([noisy_latents, conds["image_latents"]], dim=2)
        ofs = hidden.new_full((1,), 2.0) if model_config.ofs_embed_dim else None
        return model(
            hidden_states=hidden, encoder_hidden_states=conds["encoder_hidden_states"],
            encoder_hidden_mask=conds["encoder_hidden_mask"], identity_prompt_embeds=conds["identity_prompt_embeds"],
            timestep=timesteps, ofs=ofs, image_rotary_emb=self.rotary(num_frames, height, width, model_config),
            id_cond=conds["id_cond"], id_vit_hidden=conds["id_vit_hidden"], return_dict=False,
        )[0]

    def loss(self, batch: dict, prediction, noisy, x0, timesteps, rng: torch.Generator) -> tuple[torch.Tensor, dict]:
        channels = x0.shape[2]
        p_t = self.transformer_config.get("patch_size_t")
        motion = expand_over_channels(batch["motion_weight"].float(), channels, p_t) if self.config.loss.motion_weight else None
        per_element = per_element_loss(self.scheduler, prediction.float(), noisy, x0, timesteps, motion,
                                       weight_cap=self.config.loss.weight_cap,
                                       frame_difference_weight=self.config.loss.frame_difference_weight)
        face_branch = bool(_uniform(rng, 1).item() < self.config.loss.face_mask_probability)
        face = expand_over_channels(batch["face_weight"].float(), channels, p_t) if face_branch else None
        loss, info = reduce_loss(per_element, face), {"face_branch": face_branch}
        if self.config.loss.relative_motion_weight:
            x0_hat = x0_prediction(self.scheduler, prediction.float(), noisy, timesteps)
            clean = self._pad_frames(batch["latents_mean"].float().to(x0.device))
            relative = relative_motion_error(x0_hat, x0, clean, self.config.loss.relative_motion_floor).mean()
            loss = loss + self.config.loss.relative_motion_weight * relative
            info["relative_motion"] = relative.detach()  # a tensor: read only when logged (no device sync per step)
        if self.config.loss.identity_weight:
            identity = self.identity_term(batch, prediction, noisy, x0, timesteps)
            loss = loss + self.config.loss.identity_weight * identity
            info["identity"] = identity.detach()
        return loss, info

    def identity_term(self, batch: dict, prediction, noisy, x0, timesteps) -> torch.Tensor:
        """The identity feature term (identity_loss.py) averaged over the batch; rows at t >= identity_max_timestep
        count 0, so its scale does not depend on how many rows of a batch fall below the limit."""
        rows = timesteps < self.config.loss.identity_max_timestep
        if not bool(rows.any()):
            return prediction.new_zeros((), dtype=torch.float32)
        face = batch["face_weight"].float()
        frames = face.shape[1]  # latents padded in front for temporal patching: the clip's own frames are the last
        x0_hat = x0_prediction(self.scheduler, prediction.float(), noisy, timesteps)
        term = self._identity_loss(x0_hat[rows][:, -frames:], x0[rows][:, -frames:], face[rows])
        return term.sum() / rows.numel()

    def training_loss(self, model, batch: dict, rng: torch.Generator, model_config) -> tuple[torch.Tensor, dict]:
        """One step's loss, top to bottom; the draw order is fixed (timesteps, noise, latents, conditions, branch)."""
        if self.config.loss.motion_contrast_weight:
            return self.paired_training_loss(model, batch, rng, model_config)
        x0 = self.latents(batch, rng)
        timesteps = self.sample_timesteps(x0.shape[0], rng)
        noise = torch.randn(x0.shape, generator=rng).to(x0.device)
        noisy = self.scheduler.add_noise(x0, noise, timesteps)
        conds = self.conditions(batch, rng, x0.shape[1])
        prediction = self.forward(model, noisy, timesteps, conds, model_config)
        return self.loss(batch, prediction, noisy, x0, timesteps, rng)

    def paired_training_loss(self, model, batch: dict, rng: torch.Generator, model_config) -> tuple[torch.Tensor, dict]:
        """Each clip and its motion partner in one forward pass (2B rows): the same latent draw, timestep, noise,
        reference, identity text and dropouts, only the clip and its caption differ. The loss is the usual one over
        all 2B rows plus loss.motion_contrast_weight times the motion contrast term over the pairs (loss.py); pairs
        without a partner (still clips) or whose caption was dropped carry no contrast term."""
        mean_a, mean_b = batch["latents_mean"].float(), batch["partner.latents_mean"].float()
        x0_a, x0_b = mean_a, mean_b
        if "latents_std" in batch:  # one posterior draw for both: the same eps, each clip's own mean and std
            eps = torch.randn(mean_a.shape, generator=rng).to(mean_a.device)
            x0_a = mean_a + batch["latents_std"].float() * eps
            x0_b = mean_b + batch["partner.latents_std"].float() * eps
        x0_a, x0_b = self._pad_frames(x0_a), self._pad_frames(x0_b)
        n = x0_a.shape[0]
        timesteps = self.sample_timesteps(n, rng)
        noise = torch.randn(x0_a.shape, generator=rng).to(x0_a.device)
        x0, both_t = torch.cat([x0_a, x0_b]), timesteps.repeat(2)
        noisy = self.scheduler.add_noise(x0, noise.repeat(2, 1, 1, 1, 1), both_t)
        conds = self.conditions(batch, rng, x0.shape[1])
        partner_prompt, partner_mask = self.captions(batch, conds["prompt_dropped"], prefix="partner.")
        paired = {key: torch.cat([value, value]) for key, value in conds.items() if torch.is_tensor(value)}
        paired["encoder_hidden_states"] = torch.cat([conds["encoder_hidden_states"], partner_prompt])
        paired["encoder_hidden_mask"] = torch.cat([conds["encoder_hidden_mask"], partner_mask])
        paired["id_vit_hidden"] = [torch.cat([h, h]) for h in conds["id_vit_hidden"]]
        prediction = self.forward(model, noisy, both_t, paired, model_config)

        both = {key: torch.cat([batch[key], batch[f"partner.{key}"]]) for key in ("motion_weight", "face_weight", "latents_mean")}
        loss, info = self.loss(both, prediction, noisy, x0, both_t, rng)
        x0_hat = x0_prediction(self.scheduler, prediction.float(), noisy, both_t)
        contrast = motion_contrast_error(x0_hat[:n], x0_a, x0_hat[n:], x0_b, self._pad_frames(mean_a),
                                         self._pad_frames(mean_b), self.config.loss.motion_contrast_floor)
        counted = (batch["has_partner"] & ~conds["prompt_dropped"]).to(contrast.dtype)
        contrast = (contrast * counted).sum() / counted.sum().clamp_min(1.0)
        info["motion_contrast"] = contrast.detach()  # a tensor: read only when logged
        return loss + self.config.loss.motion_contrast_weight * contrast, info
