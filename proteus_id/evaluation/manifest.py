"""Run manifests for `proteus-id evaluate`: one JSON object per line, `{"image", "prompt", "video"}` with paths
relative to the manifest; any other keys (identity id, prompt category, seed, ...) are kept and end up as columns of
per_video.csv, so results can be grouped by them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError

REQUIRED_KEYS = ("video",)
KNOWN_KEYS = ("image", "prompt", "video")


class ManifestError(UserError):
    """A run manifest that cannot be read (the message names the file and line)."""


@dataclass
class EvalRow:
    """One manifest row. `image` may be None (then identity metrics are skipped for the row, with a note)."""

    index: int
    video: Path
    image: Path | None
    prompt: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable id of the row's content: same row -> same key across reruns; an edited row gets a new key, so a
        stale result is never reused for it."""
        digest = hashlib.sha1(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:10]
        return f"{self.index:06d}-{digest}"


def read_manifest(path: str | Path) -> list[EvalRow]:
    """Parse a run manifest. Malformed lines are a ManifestError naming the line; a row whose files are missing is
    NOT an error here: it becomes a failed row with its reason when evaluated, so one bad video never stops a run."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist")
    base = path.resolve().parent
    rows: list[EvalRow] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{path}:{lineno}: not valid JSON ({err.msg}); one JSON object per line") from err
            if not isinstance(data, dict):
                raise ManifestError(f"{path}:{lineno}: expected a JSON object with video/image/prompt keys")
            missing = [k for k in REQUIRED_KEYS if not data.get(k)]
            if missing:
                raise ManifestError(f"{path}:{lineno}: missing {', '.join(missing)} (rows need at least a video path)")
            for key in ("video", "image", "prompt"):
                if data.get(key) is not None and not isinstance(data[key], str):
                    raise ManifestError(f"{path}:{lineno}: {key!r} must be a string, got {type(data[key]).__name__}")
            rows.append(
                EvalRow(
                    index=len(rows),
                    video=_resolve(base, data["video"]),
                    image=_resolve(base, data["image"]) if data.get("image") else None,
                    prompt=data.get("prompt") or None,
                    extra={k: v for k, v in data.items() if k not in KNOWN_KEYS},
                    raw=data,
                )
            )
    if not rows:
        raise ManifestError(f"{path} has no rows; write one JSON object per line: {{\"image\", \"prompt\", \"video\"}}")
    return rows


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def write_manifest(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as JSONL atomically (temporary file, then rename)."""
    from ..atomic import write_text_atomic

    return write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
