"""Files that appear complete or not at all: write beside the target, fsync, then os.replace.

One helper for the whole package, so a killed process never leaves a half-written manifest, cache index, video or
checkpoint under its final name (readers only ever see the old file or the new one).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`, named `.NAME.PID.tmp` (cleanups of killed runs look for that pattern;
    writers that pick a format from the suffix must be told the format); on success it replaces `path`, on error
    it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, **dump_options: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, **{"indent": 1, **dump_options}) + "\n")
