"""How much of the latent does each motion of the toy world change? A diagnostic for motions a model does not learn.

    python benchmarks/toy_motion_energy.py ROOT/trained/face2 [--identities 4]

For each motion and speed, true clips of a few `judge_val` identities are encoded by the model's VAE (latent mean,
times the scaling factor, as the training cache holds them) and two numbers printed, means over the identities:
- change: the mean squared difference between consecutive latent frames (0 for a still clip: the world is static);
- vs still: the mean squared difference from the same clip rendered with the motion set to "still".
Both are per latent element, the unit of the denoising loss: a motion whose numbers are small weighs little in it.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a toy model folder (only its VAE is used)")
    parser.add_argument("--identities", type=int, default=4)
    args = parser.parse_args()

    import torch
    from diffusers import AutoencoderKLCogVideoX

    from proteus_id.toyworld.traits import DEFAULT_WORLD_SEED, MOTIONS, identity_numbers, sample_identity, sample_scene
    from proteus_id.toyworld.world import ClipSpec, render_clip

    torch.set_num_threads(2)
    vae = AutoencoderKLCogVideoX.from_pretrained(args.model, subfolder="vae").eval()
    scale = vae.config.scaling_factor
    numbers = identity_numbers("judge_val", args.identities)

    def latent(scene, identity, k: int) -> torch.Tensor:
        frames = render_clip(ClipSpec(identity, scene, "", "", k, DEFAULT_WORLD_SEED)).frames
        pixels = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        return vae.encode(pixels).latent_dist.mean[0].transpose(0, 1) * scale  # (F, C, h, w)

    print(f"{'motion':12s} " + "  ".join(f"{speed + ': change / vs still':>30s}" for speed in ("slow", "normal", "fast")))
    with torch.no_grad():
        for motion in MOTIONS:
            cells = []
            for speed in ("slow", "normal", "fast"):
                change, versus = [], []
                for k, number in enumerate(numbers):
                    identity = sample_identity(number)
                    scene = sample_scene(np.random.default_rng([number, 7]), motion=motion, speed=speed)
                    moving = latent(scene, identity, k)
                    still = latent(dataclasses.replace(scene, motion="still"), identity, k)
                    change.append(float(((moving[1:] - moving[:-1]) ** 2).mean()))
                    versus.append(float(((moving - still) ** 2).mean()))
                cells.append(f"{np.mean(change):14.4f} / {np.mean(versus):.4f}")
            print(f"{motion:12s} " + "  ".join(f"{c:>30s}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
