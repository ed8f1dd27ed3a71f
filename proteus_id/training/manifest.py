"""Training manifests, format version 1 (docs/manifest.md): one JSON object per line, one row per clip.

`read_manifest` parses every line and checks its structure (keys, types, ranges that need no file); rows with an
error are kept out of `Manifest.rows` and reported in `Manifest.issues`. `validate_manifest` adds the checks that
open files: the video decodes and holds the range, the reference is outside the clip and readable, annotations
cover the clip and decode. Nothing is silently dropped: every skipped row has a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import UserError
from .annotations import AnnotationError, box_or_none, decode_rle, mask_frame_count

MANIFEST_VERSION = 1
TOP_LEVEL_KEYS = {"version", "id", "video", "start_frame", "end_frame", "fps", "caption", "identity_prompt",
                  "reference", "annotations", "meta"}
BOX_KEYS = ("face_boxes", "person_boxes")
MASK_KEYS = ("face_masks", "person_masks")


class ManifestError(UserError):
    """The manifest file itself cannot be read."""


@dataclass
class Reference:
    frame: int | None = None
    image: Path | None = None

    def describe(self) -> str:
        return f"frame {self.frame}" if self.frame is not None else f"image {self.image}"


@dataclass
class ManifestRow:
    line: int
    id: str
    video: Path
    start_frame: int
    end_frame: int
    fps: float
    caption: str | None
    identity_prompt: str | None
    reference: Reference
    annotations: dict[str, Any]
    meta: dict[str, Any]
    base_dir: Path

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def trainable(self) -> bool:
        return bool(self.caption and self.caption.strip()) and bool(self.identity_prompt and self.identity_prompt.strip())


@dataclass
class RowIssues:
    line: int
    id: str | None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    path: Path
    rows: list[ManifestRow]
    issues: list[RowIssues]
    total_lines: int

    def __iter__(self) -> Iterator[ManifestRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


# ------------------------------------------------------------------ structure (no files opened)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_row(obj: Any, line: int, base_dir: Path) -> tuple[ManifestRow | None, RowIssues]:
    """One decoded JSON value -> a row (None when it has errors) and its errors/warnings."""
    issues = RowIssues(line=line, id=obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None)
    err, warn = issues.errors.append, issues.warnings.append
    if not isinstance(obj, dict):
        err(f"a row must be a JSON object, got {type(obj).__name__}")
        return None, issues
    for key in sorted(set(obj) - TOP_LEVEL_KEYS):
        warn(f"unknown key '{key}' ignored (manifest v{MANIFEST_VERSION}; put free-form data under 'meta')")
    if obj.get("version") != MANIFEST_VERSION:
        err(f"'version' must be {MANIFEST_VERSION}, got {obj.get('version')!r}")
    if not isinstance(obj.get("id"), str) or not obj.get("id"):
        err("'id' must be a non-empty string")
    if not isinstance(obj.get("video"), str) or not obj.get("video"):
        err("'video' must be a path string relative to the manifest")
    start, end = obj.get("start_frame"), obj.get("end_frame")
    if not _is_int(start) or start < 0:
        err(f"'start_frame' must be an integer >= 0, got {start!r}")
    if not _is_int(end):
        err(f"'end_frame' must be an integer (exclusive), got {end!r}")
    elif _is_int(start) and end <= start:
        err(f"empty clip: end_frame {end} <= start_frame {start}")
    fps = obj.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
        err(f"'fps' must be a positive number, got {fps!r}")
    texts = {}
    for key in ("caption", "identity_prompt"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            err(f"'{key}' must be a string or null, got {type(value).__name__}")
        elif value is None or not value.strip():
            warn(f"no {key}: the row is well-formed but not trainable")
        texts[key] = value if isinstance(value, str) else None

    reference = _parse_reference(obj.get("reference"), start, end, base_dir, err)
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict):
        err("'annotations' must be an object")
        annotations = {}
    elif _is_int(start) and _is_int(end) and end > start:
        _check_annotation_structure(annotations, end - start, err, warn)
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        err("'meta' must be an object")
    if issues.errors:
        return None, issues
    row = ManifestRow(
        line=line, id=obj["id"], video=base_dir / obj["video"], start_frame=start, end_frame=end, fps=float(fps),
        caption=texts["caption"], identity_prompt=texts["identity_prompt"], reference=reference,
        annotations=annotations, meta=meta, base_dir=base_dir,
    )
    return row, issues


def _parse_reference(ref: Any, start, end, base_dir: Path, err) -> Reference:
    if not isinstance(ref, dict) or (("frame" in ref) == ("image" in ref)):
        err("'reference' must be {\"frame\": N} (a frame outside the clip) or {\"image\": \"path\"}")
        return Reference()
    if "frame" in ref:
        frame = ref["frame"]
        if not _is_int(frame) or frame < 0:
            err(f"reference frame must be an integer >= 0, got {frame!r}")
            return Reference()
        if _is_int(start) and _is_int(end) and start <= frame < end:
            err(f"reference frame {frame} is inside the clip [{start}, {end}); take the reference face from outside "
                "the clip (cross-face) or give an image")
        return Reference(frame=frame)
    if not isinstance(ref["image"], str) or not ref["image"]:
        err("reference image must be a path string")
        return Reference()
    return Reference(image=base_dir / ref["image"])


def _check_annotation_structure(annotations: dict, clip_frames: int, err, warn) -> None:
    for key in sorted(set(annotations) - set(BOX_KEYS) - set(MASK_KEYS)):
        warn(f"unknown annotation '{key}' ignored")
    for key in BOX_KEYS:
        boxes = annotations.get(key)
        if boxes is None:
            continue
        if not isinstance(boxes, list):
            err(f"annotations.{key} must be a list with one box (or null) per clip frame")
            continue
        if len(boxes) != clip_frames:
            err(f"annotations.{key} has {len(boxes)} entries, the clip has {clip_frames} frames")
        for i, box in enumerate(boxes):
            try:
                box_or_none(box)
            except AnnotationError as e:
                err(f"annotations.{key}[{i}]: {e}")
                break
        if boxes and all(b is None for b in boxes):
            warn(f"annotations.{key} has no detection in any frame")
    for key in MASK_KEYS:
        entry = annotations.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict) or entry.get("format") not in ("rle", "png"):
            err(f"annotations.{key} must be {{\"format\": \"rle\" | \"png\", ...}}")
            continue
        if entry["format"] == "rle":
            size = entry.get("size")
            if not (isinstance(size, list) and len(size) == 2 and all(_is_int(s) and s > 0 for s in size)):
                err(f"annotations.{key}.size must be [H, W]")
                continue
            if not isinstance(entry.get("counts"), list):
                err(f"annotations.{key}.counts must be a list of run-length lists, one per frame")
                continue
        elif not isinstance(entry.get("paths"), list) or not all(isinstance(p, str) for p in entry["paths"]):
            err(f"annotations.{key}.paths must be a list of PNG paths, one per frame")
            continue
        if mask_frame_count(entry) != clip_frames:
            err(f"annotations.{key} has {mask_frame_count(entry)} frames, the clip has {clip_frames}")


def read_manifest(path: str | Path) -> Manifest:
    """Parse a JSONL manifest; rows with structural errors are reported, not returned. Duplicate ids are errors."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist")
    base_dir = path.resolve().parent
    rows, issues, seen = [], [], {}
    total = 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ManifestError(f"manifest {path} is not UTF-8 text ({e})") from e
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        total += 1
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            issues.append(RowIssues(line=number, id=None, errors=[f"not valid JSON ({e.msg} at column {e.colno})"]))
            continue
        row, row_issues = parse_row(obj, number, base_dir)
        if row is not None and row.id in seen:
            row_issues.errors.append(f"duplicate id '{row.id}' (first on line {seen[row.id]})")
            row = None
        if row is not None:
            seen[row.id] = number
            rows.append(row)
        if row_issues.errors or row_issues.warnings:
            issues.append(row_issues)
    return Manifest(path=path, rows=rows, issues=issues, total_lines=total)


# ------------------------------------------------------------------ checks that open files


@dataclass
class VideoInfo:
    frames: int
    height: int
    width: int
    fps: float


def probe_video(path: Path) -> VideoInfo:
    """Frame count, size and rate. The count is the container's (exact for mp4/mov), else the packet count."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        frames = int(stream.frames or 0)
        if frames <= 0:
            frames = sum(1 for p in container.demux(stream) if p.size)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        return VideoInfo(frames=frames, height=stream.codec_context.height, width=stream.codec_context.width, fps=fps)


def check_row_files(row: ManifestRow, issues: RowIssues, video_cache: dict[Path, VideoInfo | str]) -> None:
    """Errors for missing/unreadable files, ranges outside the video and annotations that do not decode."""
    err, warn = issues.errors.append, issues.warnings.append
    if row.video not in video_cache:
        if not row.video.is_file():
            video_cache[row.video] = f"video {row.video} does not exist"
        else:
            try:
                video_cache[row.video] = probe_video(row.video)
            except Exception as e:  # noqa: BLE001 - any decoder failure means "unreadable", reported per row
                video_cache[row.video] = f"video {row.video} is not readable ({e.__class__.__name__}: {e})"
    info = video_cache[row.video]
    if isinstance(info, str):
        err(info)
        info = None
    else:
        if row.end_frame > info.frames:
            err(f"range [{row.start_frame}, {row.end_frame}) is outside the video ({info.frames} frames)")
        if info.fps and abs(info.fps - row.fps) > 0.01 * info.fps:
            warn(f"fps {row.fps:g} differs from the file's {info.fps:g}")
    if row.reference.frame is not None and info is not None and row.reference.frame >= info.frames:
        err(f"reference frame {row.reference.frame} is outside the video ({info.frames} frames)")
    if row.reference.image is not None:
        _check_image(row.reference.image, "reference image", err)
    size = (info.height, info.width) if info is not None else None
    for key in MASK_KEYS:
        entry = row.annotations.get(key)
        if entry is None:
            continue
        if entry["format"] == "rle":
            if size and tuple(entry["size"]) != size:
                err(f"annotations.{key}.size {entry['size']} differs from the video's {list(size)}")
            for i, counts in enumerate(entry["counts"]):
                try:
                    decode_rle(entry["size"], counts)
                except AnnotationError as e:
                    err(f"annotations.{key} frame {i}: {e}")
                    break
        else:
            missing = [p for p in entry["paths"] if not (row.base_dir / p).is_file()]
            if missing:
                err(f"annotations.{key}: {len(missing)} mask file(s) missing, first {row.base_dir / missing[0]}")
            elif entry["paths"]:
                _check_image(row.base_dir / entry["paths"][0], f"annotations.{key} first mask", err, size)


def _check_image(path: Path, what: str, err, size: tuple[int, int] | None = None) -> None:
    from PIL import Image

    if not path.is_file():
        err(f"{what} {path} does not exist")
        return
    try:
        with Image.open(path) as img:
            img.load()
            if size is not None and (img.height, img.width) != size:
                err(f"{what} {path} is {img.height}x{img.width}, the video is {size[0]}x{size[1]}")
    except Exception as e:  # noqa: BLE001 - PIL raises many types for broken files
        err(f"{what} {path} is not a readable image ({e.__class__.__name__})")


@dataclass
class ValidationReport:
    manifest: Manifest
    issues: list[RowIssues]
    rows_with_errors: int
    rows_with_warnings: int
    trainable_rows: int

    @property
    def num_errors(self) -> int:
        return sum(len(i.errors) for i in self.issues)

    @property
    def num_warnings(self) -> int:
        return sum(len(i.warnings) for i in self.issues)

    @property
    def ok(self) -> bool:
        return self.rows_with_errors == 0

    def as_dict(self) -> dict:
        return {
            "manifest": str(self.manifest.path), "rows": self.manifest.total_lines,
            "rows_with_errors": self.rows_with_errors, "rows_with_warnings": self.rows_with_warnings,
            "trainable_rows": self.trainable_rows,
            "issues": [{"line": i.line, "id": i.id, "errors": i.errors, "warnings": i.warnings} for i in self.issues],
        }


def validate_manifest(path: str | Path, check_files: bool = True, progress: bool = False) -> ValidationReport:
    """Every row checked; issues sorted by line. `check_files=False` checks the structure only."""
    manifest = read_manifest(path)
    by_line = {i.line: i for i in manifest.issues}
    video_cache: dict[Path, VideoInfo | str] = {}
    rows = manifest.rows
    if check_files:
        from tqdm import tqdm

        for row in tqdm(rows, desc="checking files", unit="row", disable=not progress):
            issues = by_line.get(row.line) or RowIssues(line=row.line, id=row.id)
            check_row_files(row, issues, video_cache)
            if issues.errors or issues.warnings:
                by_line[row.line] = issues
    issues = [by_line[k] for k in sorted(by_line)]
    bad_lines = {i.line for i in issues if i.errors}
    trainable = sum(1 for r in rows if r.line not in bad_lines and r.trainable)
    return ValidationReport(
        manifest=manifest, issues=issues, rows_with_errors=len(bad_lines),
        rows_with_warnings=sum(1 for i in issues if i.warnings and not i.errors), trainable_rows=trainable,
    )

