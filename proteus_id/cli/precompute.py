"""`proteus-id precompute`: manifest -> feature cache (VAE latents, text and identity features, AML weights).

    proteus-id precompute --config CONFIG.yaml              model, data.manifest, data.cache, precompute.* from the file
    proteus-id precompute MANIFEST --model DIR --out CACHE  the same with flags (flags override the config)
    accelerate launch -m proteus_id.cli.main precompute ... the rows split over processes

Resumable: rerun the same command after an interruption; finished items are kept, failed ones retried.
Exit 0 when done, 1 when some rows failed (within --max-bad-fraction), 2 on bad input or too many failures.
"""

from __future__ import annotations

import argparse

_SETTING_FLAGS = {
    "height": int, "width": int, "num_frames": int, "frame_stride": int, "flow": str, "motion_weight": str,
    "identity_backend": str, "identity_prompt_length": int, "latent_sampling": str, "dtype": str,
    "shard_size": int, "max_bad_fraction": float,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", nargs="?", help="manifest .jsonl (default: data.manifest of --config)")
    parser.add_argument("--config", help="training config YAML (its model, data.manifest, data.cache, precompute section)")
    parser.add_argument("--model", help="model folder whose VAE, text encoder and face backend are used")
    parser.add_argument("--out", help="cache folder (default: data.cache of --config)")
    for name, kind in _SETTING_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=f"precompute.{name}")
    parser.add_argument("--vae-tiling", action="store_true", default=None, help="VAE tiling (large frames on small GPUs)")
    parser.add_argument("--raft-weights", help="local RAFT weight file (with --flow raft)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..training.config import PrecomputeConfig, from_dict, load_config
    from ..training.features import FeatureSettings
    from ..training.precompute import run_precompute

    overrides = {k: getattr(args, k) for k in list(_SETTING_FLAGS) + ["vae_tiling"] if getattr(args, k) is not None}
    if args.raft_weights:
        overrides["flow_options"] = {"weights": args.raft_weights}
    if args.config:
        config = load_config(args.config, {f"precompute.{k}": v for k, v in overrides.items()})
        options, model, manifest, out = config.precompute, config.model, config.data.manifest, config.data.cache
    else:
        options, model, manifest, out = from_dict(PrecomputeConfig, overrides, "precompute"), None, None, None
    model, manifest, out = args.model or model, args.manifest or manifest, args.out or out
    missing = [name for name, value in (("--model", model), ("MANIFEST", manifest), ("--out", out)) if not value]
    if missing:
        raise UserError(f"precompute needs {', '.join(missing)} (or a --config that has them)")

    fields = {k: v for k, v in vars(options).items() if k not in ("shard_size", "max_bad_fraction")}
    settings = FeatureSettings(model=model, **fields)
    summary = run_precompute(manifest, out, settings, shard_size=options.shard_size,
                             max_bad_fraction=options.max_bad_fraction, progress=not args.no_progress)
    from accelerate import PartialState

    if PartialState().is_main_process:  # the state run_precompute created
        for line in summary.lines():
            print(line)
        print(f"cache: {out} ({summary.done + summary.already} items)")
    return 1 if summary.failed else 0
