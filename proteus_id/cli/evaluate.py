"""`proteus-id evaluate --manifest RUN.jsonl --out DIR`: metrics, tables and a report for generated videos.

Several processes: `accelerate launch --num_processes N -m proteus_id.cli.main evaluate ...` (rows are split
between them; rerun the same command after an interruption and only unfinished rows are evaluated).
"""

from __future__ import annotations

import argparse


def add_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    """The metric settings shared by `evaluate` and `bench`."""
    group = parser.add_argument_group("metrics and their weights (local files only; absent weights = metric skipped)")
    group.add_argument("--config", help="YAML/JSON file with these settings (flags override it)")
    group.add_argument("--weights-dir", help="folder searched for the weights below by their usual file names")
    group.add_argument("--arcface", help="insightface ArcFace ONNX (e.g. antelopev2/glintr100.onnx) for facesim_arc")
    group.add_argument("--curricularface", help="glint360k_curricular_face_r101_backbone.bin for facesim_cur")
    group.add_argument("--clip", help="transformers folder of CLIP ViT-B/32 for clipscore")
    group.add_argument("--inception", help="InceptionV3 weights (pytorch-fid pt_inception-*.pth) for the face FID")
    group.add_argument("--metrics", help="comma-separated subset of metrics (default: all that can run)")
    group.add_argument("--frames", type=int, help="frames sampled per video (default 16, the ConsisID protocol)")
    group.add_argument("--face-upsample", type=int, choices=[0, 1, 2],
                       help="dlib detector upsampling for frames (default: 1 below a 400 px short side, else 0)")
    group.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                       help="import MODULE first; it registers extra metrics (or, for bench, face backends) (repeatable)")
    group.add_argument("--device", help="torch device for the metric networks (default: accelerate's device)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help='JSONL rows {"image", "prompt", "video"} (paths relative to it)')
    parser.add_argument("--out", required=True, help="output folder (per_video.csv, summary.json, report.md/html)")
    add_evaluation_arguments(parser)
    parser.add_argument("--retry-failed", action="store_true", help="evaluate rows that failed in an earlier run again")
    parser.add_argument("--fresh", action="store_true", help="ignore results of earlier runs in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    from ..evaluation.config import EvalConfig

    config = EvalConfig.from_file(args.config) if args.config else EvalConfig()
    for slot in ("arcface", "curricularface", "clip", "inception"):
        if getattr(args, slot):
            from pathlib import Path

            setattr(config, slot, Path(getattr(args, slot)).expanduser())
    if args.weights_dir:
        config.fill_from_weights_dir(args.weights_dir)
    if args.metrics:
        config.metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.frames is not None:
        from ..evaluation.config import EvalConfigError

        if args.frames < 2:
            raise EvalConfigError(f"--frames must be at least 2, got {args.frames}")
        config.sample_frames = args.frames
    if args.face_upsample is not None:
        config.face_upsample = args.face_upsample
    if args.device:
        config.device = args.device
    else:
        from ..evaluation.processes import process_state

        config.device = str(process_state().device)
    return config


def print_summary(result) -> None:
    from ..evaluation.report.render import summary_rows

    summary = result.summary
    counts = summary["counts"]
    print(f"{counts['rows']} rows: {counts['ok']} ok, {counts['failed']} failed "
          f"({counts['evaluated_this_run']} evaluated now, {counts['reused_from_earlier_runs']} reused)")
    for name, value in summary["set_level"].items():
        print(f"  {name}: {value}")
    width = max([len(r[0]) for r in summary_rows(summary)] + [6])
    for metric, n, mean, std, ci in summary_rows(summary):
        print(f"  {metric:{width}s}  n={n:>4s}  mean={mean:>9s}  std={std:>9s}  95% CI {ci}")
    for name, reason in summary["skipped_metrics"].items():
        print(f"  skipped {name}: {reason}")
    print(f"report: {result.out_dir / 'report.html'}")


def run(args: argparse.Namespace) -> int:
    from ..evaluation.runner import run_evaluation

    config = config_from_args(args)
    result = run_evaluation(args.manifest, args.out, config, plugins=args.plugin, retry_failed=args.retry_failed,
                            fresh=args.fresh, progress=not args.no_progress)
    if result is None:  # not the main process
        return 0
    print_summary(result)
    return 1 if result.failed else 0
