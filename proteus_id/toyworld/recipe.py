"""The end-to-end recipe of the shipped toy model, one function per `proteus-id toy` subcommand."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import UserError
from .traits import DEFAULT_WORLD_SEED

logger = logging.getLogger("proteus_id")


def _world_seed(args: argparse.Namespace) -> int:
    return DEFAULT_WORLD_SEED if getattr(args, "world_seed", None) is None else int(args.world_seed)


def run_toy_command(args: argparse.Namespace) -> int:
    handlers = {
        "render": cmd_render,
        "subset": cmd_subset,
        "sheet": cmd_sheet,
        "train-vae": cmd_train_vae,
        "train-encoder": cmd_train_encoder,
        "train-judges": cmd_train_judges,
        "build-model": cmd_build_model,
        "halve-patches": cmd_halve_patches,
        "add-blocks": cmd_add_blocks,
        "configs": cmd_configs,
        "ship": cmd_ship,
        "suite": cmd_suite,
        "reproduce": cmd_reproduce,
        "ablation-table": cmd_ablation_table,
    }
    if args.toy_command not in handlers:
        raise UserError(f"unknown toy subcommand {args.toy_command!r}")
    return handlers[args.toy_command](args)


def cmd_render(args: argparse.Namespace) -> int:
    from .dataset import render_dataset

    if args.identities < 1 or args.clips_per_identity < 1:
        raise UserError("--identities and --clips-per-identity must be at least 1")
    summary = render_dataset(args.out, split=args.split, identities=args.identities,
                             clips_per_identity=args.clips_per_identity, first_identity=args.first_identity,
                             world_seed=_world_seed(args), contrast=args.contrast)
    skipped = f", {summary['skipped_still']} still clips without a partner" if args.contrast else ""
    print(f"{summary['written']} clips written, {summary['kept']} already there{skipped}; manifest: {summary['manifest']}")
    return 0


def cmd_subset(args: argparse.Namespace) -> int:
    from .dataset import motion_subset

    summary = motion_subset(args.manifest, args.name, args.body_every)
    kept = ", ".join(f"{m} {n}" for m, n in sorted(summary["kept"].items()))
    dropped = ", ".join(f"{m} {n}" for m, n in sorted(summary["dropped"].items())) or "none"
    print(f"{summary['rows']} rows -> {summary['manifest']}\n  kept: {kept}\n  dropped: {dropped}")
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    from .dataset import contact_sheet

    path = contact_sheet(args.out, rows=args.rows, world_seed=_world_seed(args))
    print(f"contact sheet: {path}")
    return 0


def cmd_train_vae(args: argparse.Namespace) -> int:
    from .vae import DecoderTuneConfig, VAETrainConfig, finetune_decoder, train_vae

    if args.scale <= 0:
        raise UserError("--scale must be positive")
    if args.decoder_only_from:
        if args.latent_noise < 0:
            raise UserError("--latent-noise must be >= 0")
        tune = DecoderTuneConfig(seed=args.seed + 1, world_seed=_world_seed(args), latent_noise=args.latent_noise)
        tune.phases = tuple((n, max(1, round(s * args.scale)), b, f) for n, s, b, f in tune.phases)
        path = finetune_decoder(args.out, args.decoder_only_from, tune)
        print(f"VAE (decoder fine-tuned) written to {path} (metrics: {Path(args.out) / 'vae_metrics.json'})")
        return 0
    cfg = VAETrainConfig(seed=args.seed, world_seed=_world_seed(args))
    cfg.phases = tuple((n, max(1, round(s * args.scale)), b, f, c) for n, s, b, f, c in cfg.phases)
    path = train_vae(args.out, cfg)
    print(f"VAE written to {path} (metrics: {Path(args.out) / 'vae_metrics.json'})")
    return 0


def cmd_train_encoder(args: argparse.Namespace) -> int:
    from .identity_encoder import EncoderTrainConfig, train_encoder

    cfg = EncoderTrainConfig(seed=args.seed, world_seed=_world_seed(args))
    if args.steps is not None:
        cfg.steps = args.steps
    path = train_encoder(args.out, cfg)
    print(f"identity encoder written to {path}")
    return 0


def cmd_train_judges(args: argparse.Namespace) -> int:
    from .judges import train_judges

    path = train_judges(args.out, seed=args.seed, only=args.only, scale=args.scale, world_seed=_world_seed(args))
    print(f"judges written to {path}")
    return 0


def cmd_build_model(args: argparse.Namespace) -> int:
    from .model_folder import build_model_folder

    path = build_model_folder(args.out, args.vae, args.face_encoder, variant=args.variant, seed=args.seed,
                              absolute_positions=args.absolute_positions)
    print(f"model folder ({args.variant}{', absolute positions' if args.absolute_positions else ''}): {path}")
    return 0


def cmd_halve_patches(args: argparse.Namespace) -> int:
    from ..model.patch_surgery import halve_patch_size_folder

    path = halve_patch_size_folder(args.transformer, args.out)  # a CheckpointError is a one-line exit 2
    print(f"transformer with 1x1 patches (RoPE on the 2x2 grid): {path}")
    return 0


def cmd_add_blocks(args: argparse.Namespace) -> int:
    from ..model.depth_surgery import deepen_folder

    path = deepen_folder(args.transformer, args.out, args.new_layers)  # a CheckpointError is a one-line exit 2
    print(f"transformer with {args.new_layers} more blocks (zero-gated): {path}")
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    from .train_configs import write_configs

    for path in write_configs(args.root, max_steps=args.max_steps):
        print(path)
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    from . import ship

    if not (args.model or args.judges or args.faces):
        raise UserError("nothing to ship: give --model and --transformer, --judges, and/or --faces")
    if args.model:
        if not args.transformer:
            raise UserError("--model needs --transformer (the trained transformer folder)")
        from ..cli.generate_jobs import check_guidance_interval

        interval = check_guidance_interval(args.guidance_interval)
        defaults = {k: v for k, v in (("steps", args.steps), ("guidance", args.guidance), ("guidance_interval", interval),
                                      ("motion_contrast", args.motion_contrast),
                                      ("identity_guidance", args.identity_guidance)) if v is not None}
        if args.identity_guidance is not None:
            from ..cli.generate_jobs import check_identity_guidance
            from ..pipeline.options import DEFAULT_IDENTITY_GUIDANCE_NEGATIVE

            check_identity_guidance(args.identity_guidance, DEFAULT_IDENTITY_GUIDANCE_NEGATIVE)
            defaults["identity_guidance_negative"] = DEFAULT_IDENTITY_GUIDANCE_NEGATIVE

        path = ship.ship_model(args.model, args.transformer, args.card, generation_defaults=defaults or None,
                               half=args.half)
        print(f"model: {path} ({ship.folder_megabytes(path):.1f} MB)")
    if args.faces:
        print(f"example faces: {ship.write_example_faces(world_seed=_world_seed(args))}")
    if args.judges:
        print(f"judges: {ship.ship_judges(args.judges)}")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    from .suite import write_suite

    if args.prompts_per_identity < 1:
        raise UserError("--prompts-per-identity must be at least 1")
    print(f"suite: {write_suite(args.out, args.prompts_per_identity, _world_seed(args), negative=args.negative)}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .ablation import Recipe, ReproduceSettings
    from .train_configs import ROWS

    rows = tuple(r.strip() for r in args.rows.split(",") if r.strip()) if args.rows else tuple(ROWS)
    if args.max_steps < 1 or args.steps < 1 or args.identities < 1:
        raise UserError("--max-steps, --steps and --identities must be at least 1")
    if args.eval_step is not None and not 1 <= args.eval_step <= args.max_steps:
        raise UserError("--eval-step must be between 1 and --max-steps")
    settings = ReproduceSettings(identities=args.identities, vae_scale=args.vae_scale, max_steps=args.max_steps,
                                 eval_step=args.eval_step,
                                 rows=rows, prompts_per_identity=args.prompts_per_identity, steps=args.steps,
                                 guidance=args.guidance, threads=args.threads)
    out = Recipe(args.root, settings).run()
    print(f"ablation table: {out / 'ablation.md'} (plot {out / 'ablation.png'})")
    return 0


def cmd_ablation_table(args: argparse.Namespace) -> int:
    from .ablation import BASELINES, Recipe, ReproduceSettings, bench_dir, rows_config, write_table
    from .train_configs import ROWS

    root = Path(args.root)
    step = args.eval_step or rows_config(root).get("max_steps")  # default: the schedule's end
    if not step:
        raise UserError(f"no max_steps in {root / 'configs' / 'full.yaml'}: give --eval-step, or the root of "
                        "`proteus-id toy reproduce`")
    summaries = {r: bench_dir(root, r, step) / "eval" / "summary.json" for r in (*ROWS, *BASELINES)}
    summaries = {r: path for r, path in summaries.items() if path.is_file()}
    if not any(r in ROWS for r in summaries):
        raise UserError(f"no finished benchmark of a row at step {step} under {root / 'bench'} (folders <row>_s{step}); "
                        f"run `proteus-id toy reproduce --root {root}`, or give the step with --eval-step")
    rows = list(summaries)
    budget = Recipe(root, ReproduceSettings(eval_step=step)).budget(rows)
    out = write_table(summaries, Path(args.out) if args.out else root / f"ablation-s{step}", budget=budget)
    print(f"ablation table ({len(rows)} rows): {out / 'ablation.md'}")
    return 0
