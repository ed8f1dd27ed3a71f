"""`proteus-id bench --model DIR --suite SUITE.jsonl --out RUN`: generate every video of a Proteus-Bench suite with
a model (finished videos are kept and skipped on a rerun), then evaluate them into RUN/eval/.

Several processes: `accelerate launch --num_processes N -m proteus_id.cli.main bench ...`.
"""

from __future__ import annotations

import argparse

from ..pipeline.options import DEFAULT_IDENTITY_GUIDANCE_NEGATIVE, IDENTITY_GUIDANCE_NEGATIVES
from .evaluate import add_evaluation_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model folder in the released layout (default: the shipped model, if installed)")
    parser.add_argument("--suite", required=True, help="suite JSONL (identities + prompts; see docs/evaluation.md)")
    parser.add_argument("--out", required=True, help="run folder: videos/, jobs/, manifest.jsonl, eval/")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--steps", type=int, default=50, help="denoising steps (default 50, as released)")
    gen.add_argument("--guidance-scale", type=float, default=6.0, help="text CFG scale (default 6.0)")
    gen.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                     help="text guidance only at steps with LO <= timestep <= HI (default: every step)")
    gen.add_argument("--identity-guidance", type=float, default=0.0,
                     help="identity guidance scale (default 0: off, as released; see proteus-id generate --help)")
    gen.add_argument("--identity-guidance-negative", default=DEFAULT_IDENTITY_GUIDANCE_NEGATIVE,
                     choices=IDENTITY_GUIDANCE_NEGATIVES,
                     help=f"what identity guidance's negative prediction lacks (default {DEFAULT_IDENTITY_GUIDANCE_NEGATIVE})")
    gen.add_argument("--seed", type=int, default=42, help="seed for every job (default 42, as released)")
    gen.add_argument("--height", type=int, help="video height (default: the model's)")
    gen.add_argument("--width", type=int, help="video width (default: the model's)")
    gen.add_argument("--num-frames", type=int, help="frames per video (default: the model's, 4k+1)")
    gen.add_argument("--fps", type=int, default=8, help="frame rate of the written videos (default 8)")
    gen.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                     help="weights dtype (auto: bf16 on a GPU, fp32 on the CPU)")
    gen.add_argument("--face-backend", help="face backend kind (default: the one the model folder names)")
    parser.add_argument("--no-eval", action="store_true", help="only generate (evaluate later with proteus-id evaluate)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_evaluation_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..evaluation.bench import GenerationSettings, run_bench
    from .evaluate import config_from_args, print_summary

    if args.model is None:
        from ..defaults import default_model_dir

        args.model = default_model_dir()
        if args.model is None:
            raise UserError("this build ships no default model: give --model DIR (a model folder in the released layout)")
    if args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    from .generate_jobs import check_guidance_interval, check_identity_guidance

    check_identity_guidance(args.identity_guidance, args.identity_guidance_negative)
    settings = GenerationSettings(
        steps=args.steps, guidance_scale=args.guidance_scale, guidance_interval=check_guidance_interval(args.guidance_interval),
        identity_guidance_scale=args.identity_guidance, identity_guidance_negative=args.identity_guidance_negative,
        seed=args.seed, height=args.height, width=args.width,
        num_frames=args.num_frames, fps=args.fps, dtype=args.dtype, face_backend=args.face_backend,
    )
    config = config_from_args(args)
    result = run_bench(args.model, args.suite, args.out, settings, config, plugins=args.plugin,
                       evaluate=not args.no_eval, progress=not args.no_progress)
    if result is None:
        if args.no_eval:
            print(f"videos in {args.out}/videos; evaluate with: proteus-id evaluate --manifest {args.out}/manifest.jsonl --out {args.out}/eval")
        return 0
    print_summary(result)
    return 1 if result.failed else 0
