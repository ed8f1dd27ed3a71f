"""Can the toy transformer make its frames differ at the top of the noise range? A fixed batch of walk clips (half
left, half right) from a feature cache, every step at one timestep (default t = 999, pure noise under the
zero-terminal-SNR schedule, so the prediction can come only from the caption, the face and the frame index), the
transformer trained on that batch alone. Prints the loss and how much the predicted frames 1-4 differ from frame 0
(relative RMS), beside the same figure for the clips themselves.

    python benchmarks/toy_fit_top_noise.py --config ROOT/configs/full.yaml --transformer MODEL/transformer
    python benchmarks/toy_fit_top_noise.py ... --loss release     # the release's objective (AML, face-masked half)

A model that cannot place a frame in time or read the motion words never makes the frames differ; one that can
fits them in a few hundred steps. `--loss mse` is the plain x0 error; `--loss release` is the trainer's own loss
(motion weight, the face-masked average with the config's probability), so the two show what the objective costs.
Conditioning dropouts are off: the batch is the same every step.
"""

from __future__ import annotations

import argparse
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a train config (its model folder and feature cache are used)")
    parser.add_argument("--transformer", help="transformer folder to start from (default: the config model's)")
    parser.add_argument("--clips", type=int, default=4, help="clips per direction")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--timestep", type=int, default=999)
    parser.add_argument("--loss", choices=("mse", "release"), default="mse")
    parser.add_argument("--every", type=int, default=25)
    args = parser.parse_args()

    import torch

    from proteus_id.model.transformer import ProteusIDTransformer3DModel
    from proteus_id.toyworld.captions import parse_prompt
    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.config import load_config
    from proteus_id.training.data import CacheDataset, Collate
    from proteus_id.training.loss import x0_prediction
    from proteus_id.training.spec import ProteusIDSpec

    torch.manual_seed(0)
    config = load_config(args.config)
    config.conditioning.prompt_dropout = config.conditioning.image_dropout = 0.0
    config.conditioning.identity_prompt_dropout = 0.0
    spec = ProteusIDSpec(config, torch.device("cpu"))
    cache = FeatureCache(config.data.cache)
    walks = {"walk left": [], "walk right": []}
    for i, item in enumerate(cache.items):  # the world's captions say the motion in its own phrases
        motion = parse_prompt(item.meta["caption"]).get("motion")
        if motion in walks and len(walks[motion]) < args.clips:
            walks[motion].append(i)
    picked = walks["walk left"] + walks["walk right"]
    if len(picked) < 2 * args.clips:
        parser.error(f"the cache holds fewer than {args.clips} walk clips per direction")
    dataset = CacheDataset(cache)
    batch = Collate(cache.settings["max_text_length"], cache.null_text())([dataset[i] for i in picked])
    folder = args.transformer or str(spec.folder.found["transformer"])
    model = ProteusIDTransformer3DModel.from_pretrained(folder).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    rng = torch.Generator().manual_seed(0)
    x0 = batch["latents_mean"].float()
    conds = spec.conditions(batch, rng, x0.shape[1])
    timesteps = torch.full((x0.shape[0],), args.timestep)
    true_diff = _frame_difference(x0)
    start = time.time()
    print(f"{len(picked)} walk clips, t = {args.timestep}, {args.loss} loss, lr {args.lr}; clips' own frame difference "
          f"{true_diff:.3f}")
    for step in range(args.steps + 1):
        noise = torch.randn(x0.shape, generator=rng)
        noisy = spec.scheduler.add_noise(x0, noise, timesteps)
        v = spec.forward(model, noisy, timesteps, conds, model.config)
        x0_hat = x0_prediction(spec.scheduler, v, noisy, timesteps)
        if args.loss == "release":
            loss, _ = spec.loss(batch, v, noisy, x0, timesteps, rng)
        else:
            loss = (x0_hat - x0).pow(2).mean()
        if step % args.every == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}  predicted frame difference {_frame_difference(x0_hat):.3f}"
                  f"  ({time.time() - start:.0f} s)", flush=True)
        if step < args.steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return 0


def _frame_difference(latents) -> float:
    """RMS of frames 1.. minus frame 0, relative to frame 0's RMS (latents (B, F, C, H, W))."""
    import torch

    with torch.no_grad():
        return float((latents[:, 1:] - latents[:, :1]).pow(2).mean().sqrt() / latents[:, :1].pow(2).mean().sqrt())


if __name__ == "__main__":
    raise SystemExit(main())
