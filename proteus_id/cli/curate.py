"""`proteus-id curate --input DIR_OR_LIST --out DATASET_DIR`: raw videos -> training clips, manifest and funnel."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="folder of videos (searched recursively) or a text file listing one per line")
    parser.add_argument("--out", required=True,
                        help="dataset folder: manifest.jsonl, dropped.jsonl, funnel.json/.md, contact_sheet.jpg, masks/, .curate/")
    parser.add_argument("--config", help="curation settings (YAML; see configs/curate.yaml); defaults otherwise")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting, e.g. --set windows.min_frames=33 (repeatable)")
    parser.add_argument("--captions-csv", help="shortcut for --set captions.source=csv --set captions.csv=PATH")
    parser.add_argument("--vlm", help="shortcut for --set captions.source=vlm --set captions.model=PATH (a local model folder)")
    parser.add_argument("--executor", choices=["ray", "local"], default="ray",
                        help="ray: one Ray task per video (default, local instance unless --ray-address); local: in this process")
    parser.add_argument("--ray-address", help="an existing Ray cluster (e.g. ray://head:10001 or auto)")
    parser.add_argument("--workers", type=int, help="videos processed at once (default: every CPU Ray sees)")
    parser.add_argument("--sheet", type=int, default=16, metavar="N",
                        help="contact_sheet.jpg with N kept clips (frames, boxes, reference); 0: none (default 16)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_overrides(items: list[str]) -> dict:
    import yaml

    from ..errors import UserError

    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise UserError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
        overrides.setdefault(section, {})[name] = yaml.safe_load(value) if value.strip() else None
    return overrides


def _interrupt(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    import logging
    import signal

    from ..curation.config import load_config
    from ..curation.executors import make_executor
    from ..curation.runner import curate
    from ..errors import UserError

    overrides = parse_overrides(args.set)
    if args.captions_csv:
        overrides.setdefault("captions", {}).update(source="csv", csv=args.captions_csv)
    if args.vlm:
        overrides.setdefault("captions", {}).update(source="vlm", model=args.vlm)
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    config = load_config(args.config, overrides)
    # SIGTERM (a scheduler's "stop") unwinds like Ctrl-C: the local Ray instance is shut down, finished videos are
    # already in the store, the next run resumes. SIGKILL skips this and loses nothing more (see store.py).
    executor = make_executor(args.executor, address=args.ray_address, workers=args.workers)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # after Ray's start-up, which installs its own
    try:
        outcome = curate(args.input, args.out, config, executor, progress=not args.no_progress, sheet_clips=args.sheet)
    finally:
        executor.close()
        signal.signal(signal.SIGTERM, previous)
    funnel = outcome.funnel
    print(f"{funnel['clips']} clips from {funnel['videos']} videos -> {outcome.manifest}")
    print(f"ran {outcome.processed} videos, {outcome.skipped} already finished; funnel: {outcome.manifest.parent / 'funnel.md'}")
    for stage in funnel["stages"]:
        dropped = ", ".join(f"{k} {v}" for k, v in stage["rejected"].items())
        print(f"  {stage['stage']:9s} {stage['in']:6d} -> {stage['out']:6d}  {dropped}")
    if funnel["errors"]:
        logging.getLogger(__name__).error("%d videos failed with a bug (listed in funnel.md); rerun to retry them", len(funnel["errors"]))
        return 1
    return 0
