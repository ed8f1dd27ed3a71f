"""`proteus-id train --config CONFIG.yaml`: train the transformer from a feature cache (see docs/training.md).

    proteus-id train --config configs/train/release.yaml                        one process
    accelerate launch --config_file configs/accelerate/ddp.yaml -m proteus_id.cli.main train --config ...
    proteus-id train --config C.yaml --set max_steps=100 --set optimizer.lr=1e-5   override keys

Resumes from the newest complete checkpoint in output_dir/checkpoints unless --no-resume.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (configs/train/*.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (dotted, YAML value), e.g. --set batch_size=1")
    parser.add_argument("--max-bad-fraction", type=float, help="data.max_bad_fraction: stop when more than this share "
                        "of cache items is unreadable (default 0.05)")
    parser.add_argument("--no-resume", action="store_true", help="start from the base model even if checkpoints exist")
    parser.add_argument("--stop-at-step", type=int, help="save a checkpoint and stop after this step (the schedule still "
                        "targets max_steps; rerun to continue)")
    parser.add_argument("--export-at-stop", action="store_true", help="with --stop-at-step: also export the weights of "
                        "that step to output_dir/step-NNNNNN/ (transformer/, transformer_ema/)")


def run(args: argparse.Namespace) -> int:
    import yaml

    from ..errors import UserError
    from ..training.config import load_config
    from ..training.trainer import train

    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = yaml.safe_load(value)
    if args.max_bad_fraction is not None:
        overrides["data.max_bad_fraction"] = args.max_bad_fraction
    config = load_config(args.config, overrides)
    if args.export_at_stop and args.stop_at_step is None:
        raise UserError("--export-at-stop needs --stop-at-step")
    result = train(config, stop_at_step=args.stop_at_step, resume=not args.no_resume, export_at_stop=args.export_at_stop)
    if result.stopped_early:
        print(f"stopped at step {result.step}; rerun the same command to continue")
    return 0
