"""`proteus-id`: one thin module per command (parse, validate, call the library, print, exit code).

Exit codes: 0 success, 1 the job ran but something in it failed (e.g. some batch jobs), 2 bad input (one line on
stderr, no traceback), 130 interrupted. An unexpected exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# (command, module, one-line help). Modules must be cheap to import: heavy imports live inside their run().
COMMANDS = [
    ("generate", "proteus_id.cli.generate", "photo + prompt -> video (one job or a batch)"),
    ("demo", "proteus_id.cli.demo", "a video and a preview of a shipped identity with the shipped model"),
    ("info", "proteus_id.cli.info", "what is in a model folder, parameter counts, memory per offload preset"),
    ("data", "proteus_id.cli.data", "training manifests: validate"),
    ("precompute", "proteus_id.cli.precompute", "manifest -> feature cache for training"),
    ("train", "proteus_id.cli.train", "train the transformer from a feature cache"),
    ("evaluate", "proteus_id.cli.evaluate", "metrics and a report for generated videos"),
    ("bench", "proteus_id.cli.bench", "generate a benchmark suite with a model, then evaluate it"),
    ("curate", "proteus_id.cli.curate", "raw videos -> training clips and manifest"),
    ("toy", "proteus_id.cli.toy", "the procedural identity world: render data, train the shipped model's parts"),
]


class _Parser(argparse.ArgumentParser):
    """Usage errors (`--steps many`, an unknown flag, a missing value) as one line on stderr and exit code 2; the
    sub-command parsers are of this class too."""

    def error(self, message: str):
        print(f"error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="proteus-id", description="Proteus-ID video customization")
    parser.add_argument("--version", action="version", version=f"proteus-id {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue  # command not built yet
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler], force=True)
    for noisy in ("httpx", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from ..cpu_threads import apply_thread_choice
    from .errors import report_user_error

    try:
        note = apply_thread_choice()
        if note:
            logging.getLogger("proteus_id").info(note)
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BaseException as err:  # noqa: BLE001 - classify, then re-raise bugs
        code = report_user_error(err)
        if code is None:
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
