"""Where a toy model loses identity: sampling started from the *true* clip noised to t0 (SDEdit), judged.

    python benchmarks/toy_identity_by_noise.py --model ROOT/trained/X [--clips 33] [--start 999,500,300,150]
        [--guidance 3] [--guidance-interval 0 500] [--motion-contrast opposite] [--identity-guidance 1.5]

For each `judge_val` clip (identities that neither the transformer, the encoder nor the benchmark uses; the motions
in turn), the true render is encoded by the model's VAE, noised to the first step of the 25-step schedule at or
below t0 with a fixed noise, and the model samples the rest of the schedule from there with the given settings. At
t0 = 999 this is ordinary sampling; as t0 falls, the layout, the pose and then more and more of the face come from
the true clip. The identity judge's similarity to the reference, per t0, beside the VAE round trip of the same clips
(the ceiling of any model that decodes with this VAE), says in which part of the noise range identity is lost: if
sampling from the true clip at t0 = 500 scores no better than from pure noise, the layout is not what is missing.
Prints one line per t0 (identity, motion recognised) and the round trip's identity.

`--suite SUITE --per-motion N` takes the first N prompts of each motion from a benchmark suite written by `toy suite`
(its reference faces, prompts, negatives and identity prompts) instead: a diagnosis on the benchmark's own clips,
not a place to choose settings.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager

import numpy as np


@contextmanager
def schedule_from(scheduler, t0: int):
    """Every `set_timesteps` inside keeps only the timesteps <= t0 (the pipeline has no `strength`; the scheduler
    takes no custom timesteps), so the sampler starts at the first step at or below t0."""
    original = scheduler.set_timesteps

    def truncated(*args, **kwargs):
        original(*args, **kwargs)
        scheduler.timesteps = scheduler.timesteps[scheduler.timesteps <= t0]

    scheduler.set_timesteps = truncated
    try:
        yield
    finally:
        del scheduler.set_timesteps  # back to the class's method


def clips(args):
    """(reference, prompt, negative prompt, identity prompt, true frames, motion) per clip: `judge_val` identities
    with the motions in turn, or the first --per-motion prompts of each motion of --suite."""
    from proteus_id.toyworld.ablation import baseline_frames
    from proteus_id.toyworld.captions import caption, contrast_prompt, identity_prompt, parse_prompt
    from proteus_id.toyworld.traits import DEFAULT_WORLD_SEED, MOTIONS, identity_numbers, sample_identity, sample_scene
    from proteus_id.toyworld.world import ClipSpec, render_clip, render_reference

    def negative_of(text: str) -> str:
        return "" if args.motion_contrast == "off" else contrast_prompt(text, args.motion_contrast)

    if args.suite is None:
        for k, number in enumerate(identity_numbers("judge_val", args.clips)):
            identity = sample_identity(number)
            rng = np.random.default_rng([number, 5])
            motion = MOTIONS[k % len(MOTIONS)]
            scene = sample_scene(rng, motion=motion)
            text = caption(identity, scene, rng)
            person = identity_prompt(identity, rng)
            frames = render_clip(ClipSpec(identity, scene, text, "", k, DEFAULT_WORLD_SEED)).frames
            yield render_reference(identity, variant=0), text, negative_of(text), person, frames, motion
        return
    from PIL import Image

    from proteus_id.evaluation.suite.schema import load_suite

    taken: dict[str, int] = {}
    for job in load_suite(args.suite).jobs():
        motion = parse_prompt(job.text)["motion"]
        if taken.get(motion, 0) >= args.per_motion:
            continue
        taken[motion] = taken.get(motion, 0) + 1
        reference = np.asarray(Image.open(job.identity.image).convert("RGB"))
        frames = baseline_frames("true_render", int(job.identity.id[4:]), job.text, reference, DEFAULT_WORLD_SEED)
        yield reference, job.text, negative_of(job.text), job.identity.identity_prompt, frames, motion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--clips", type=int, default=33, help="judge_val clips (without --suite)")
    parser.add_argument("--suite", help="a toy suite.jsonl to take the clips from instead")
    parser.add_argument("--per-motion", type=int, default=3, help="with --suite: prompts per motion")
    parser.add_argument("--start", default="999,500,300,150", help="t0 values, comma-separated")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"), default=(0, 500))
    parser.add_argument("--motion-contrast", default="opposite", choices=("off", "still", "opposite"))
    parser.add_argument("--identity-guidance", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    try:
        starts = [int(x) for x in args.start.split(",")]
    except ValueError:
        parser.error(f"--start takes comma-separated integers, not {args.start!r}")
    if args.suite is not None and not os.path.isfile(args.suite):
        parser.error(f"--suite {args.suite}: no such file (a suite.jsonl written by `proteus-id toy suite`)")

    import torch

    from proteus_id.identity.backends import backend_for_model
    from proteus_id.pipeline.pipeline import ProteusIDPipeline
    from proteus_id.toyworld.ablation import vae_roundtrip
    from proteus_id.toyworld.judge_eval import JudgeSet
    from proteus_id.toyworld.ship import JUDGES_DIR

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    judges = JudgeSet.load(JUDGES_DIR)
    pipe = ProteusIDPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    backend = backend_for_model(args.model)
    scale = pipe.vae_scaling_factor_image
    similarity: dict[int, list[float]] = {t0: [] for t0 in starts}
    hits: dict[int, list[bool]] = {t0: [] for t0 in starts}
    ceiling: list[float] = []
    for k, (reference, text, negative, person, frames, motion) in enumerate(clips(args)):
        features = backend.extract(reference)
        ceiling.append(float(judges.identity_similarity(reference, vae_roundtrip(frames, pipe.vae)).mean()))
        pixels = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        with torch.no_grad():  # (B, F, C, h, w), scaled as the pipeline's latents
            x0 = pipe.vae.encode(pixels).latent_dist.mean.permute(0, 2, 1, 3, 4) * scale
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1000 + k))
        for t0 in starts:
            with schedule_from(pipe.scheduler, t0):
                pipe.scheduler.set_timesteps(args.steps)
                first = pipe.scheduler.timesteps[:1]
                pure_noise = int(first) >= pipe.scheduler.config.num_train_timesteps - 1
                latents = None if pure_noise else pipe.scheduler.add_noise(x0, noise, first)
                video = pipe(image=features.face_crop, prompt=text, identity_prompt=person,
                             id_cond=features.id_cond, id_vit_hidden=features.id_vit_hidden, seed=args.seed,
                             num_inference_steps=args.steps, guidance_scale=args.guidance, negative_prompt=negative,
                             guidance_interval=tuple(args.guidance_interval),
                             identity_guidance_scale=args.identity_guidance, latents=latents,
                             output_type="np").frames[0]
            sampled = (np.clip(video, 0, 1) * 255).round().astype(np.uint8)
            similarity[t0].append(float(judges.identity_similarity(reference, sampled).mean()))
            hits[t0].append(judges.motion(sampled)["motion"] == motion)
        print(f"clip {k + 1} ({motion}): " + " ".join(
            f"t0={t0} {similarity[t0][-1]:.3f}" for t0 in starts), flush=True)
    for t0 in starts:
        print(f"start t0={t0:4d}: identity {np.mean(similarity[t0]):.3f}, motion recognised {np.mean(hits[t0]):.1%}")
    print(f"VAE round trip of the same clips: identity {np.mean(ceiling):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
