"""Stage 8, captions and identity prompts from a pluggable captioner. Never a made-up caption.

- `none`: every clip is written with caption and identity_prompt null (well-formed, not trainable yet).
- `csv`: captions written by people or another tool. Columns `caption` and optional `identity_prompt`, plus a key:
  `id` (a clip id, e.g. from the manifest of an uncaptioned run), or `video` (the path as curated: relative to the
  input folder or list) with optional `start_frame`/`end_frame` (the row then covers clips lying inside that range).
  A clip no row covers stays uncaptioned.
- `vlm`: a local vision-language model through transformers (image-text-to-text), shown a few frames of the clip for
  the caption and the reference face for the identity prompt. Loaded once per worker process; never downloaded.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..errors import UserError, require
from .config import CaptionConfig


@dataclass
class ClipToCaption:
    clip_id: str
    video: str  # the video's name as curated (relative to the input folder or list)
    start: int
    end: int
    frames: Callable[[list[int]], list[np.ndarray]] | None  # the frames of `frames_needed`, already decoded
    reference_frame: int
    reference_box: list[float]


class Captioner(Protocol):
    name: str

    def __call__(self, clip: ClipToCaption) -> tuple[str | None, str | None]:
        """(caption, identity_prompt); None where it has nothing true to say."""

    def frames_needed(self, clip: ClipToCaption) -> list[int]:
        """The frame indices `__call__` will ask `clip.frames` for (decoded beforehand, in one pass per video)."""


class NoCaptioner:
    name = "none"

    def frames_needed(self, clip: ClipToCaption) -> list[int]:
        return []

    def __call__(self, clip: ClipToCaption) -> tuple[str | None, str | None]:
        return None, None


class CsvCaptioner:
    name = "csv"

    def __init__(self, path: str):
        self.by_id: dict[str, tuple[str | None, str | None]] = {}
        self.by_video: dict[str, list[tuple[int, int, str | None, str | None]]] = {}
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = set(reader.fieldnames or [])
            if "caption" not in fields or not ({"id", "video"} & fields):
                raise UserError(f"caption CSV {path} needs a 'caption' column and an 'id' or 'video' column; has {sorted(fields)}")
            for line, row in enumerate(reader, start=2):
                caption = (row.get("caption") or "").strip() or None
                identity = (row.get("identity_prompt") or "").strip() or None
                if row.get("id"):
                    self.by_id[row["id"].strip()] = (caption, identity)
                elif row.get("video"):
                    try:
                        start = int(row.get("start_frame") or 0)
                        end = int(row.get("end_frame") or 2**62)
                    except ValueError as err:
                        raise UserError(f"caption CSV {path} line {line}: start_frame/end_frame must be whole numbers") from err
                    self.by_video.setdefault(Path(row["video"].strip()).as_posix(), []).append((start, end, caption, identity))

    def frames_needed(self, clip: ClipToCaption) -> list[int]:
        return []

    def __call__(self, clip: ClipToCaption) -> tuple[str | None, str | None]:
        if clip.clip_id in self.by_id:
            return self.by_id[clip.clip_id]
        for start, end, caption, identity in self.by_video.get(clip.video, []):
            if start <= clip.start and clip.end <= end:
                return caption, identity
        return None, None


class VlmCaptioner:
    name = "vlm"

    def __init__(self, config: CaptionConfig):
        transformers = require("transformers", "curate", "VLM captions")
        self.config = config
        self.processor = transformers.AutoProcessor.from_pretrained(config.model, local_files_only=True)
        self.model = transformers.AutoModelForImageTextToText.from_pretrained(config.model, local_files_only=True).eval()

    def frames_needed(self, clip: ClipToCaption) -> list[int]:
        """`frames` frames spread over the clip (centres of equal parts), then the reference frame."""
        count = max(1, self.config.frames)
        picks = [clip.start + round((clip.end - 1 - clip.start) * (i + 0.5) / count) for i in range(count)]
        return picks + [clip.reference_frame]

    def __call__(self, clip: ClipToCaption) -> tuple[str | None, str | None]:
        from PIL import Image

        frames = clip.frames(self.frames_needed(clip))
        x0, y0, x1, y1 = (int(round(v)) for v in clip.reference_box[:4])
        face = frames[-1][y0:y1, x0:x1]
        caption = self._ask([Image.fromarray(f) for f in frames[:-1]], self.config.caption_prompt)
        identity = self._ask([Image.fromarray(face)], self.config.identity_prompt)
        return caption, identity

    def _ask(self, images: list, question: str) -> str | None:
        import torch

        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": question}]
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        inputs = self.processor(images=images, text=prompt, return_tensors="pt")
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False)
        text = self.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]
        return " ".join(text.split()) or None  # an empty answer is no caption, not an empty caption


@lru_cache(maxsize=2)
def _cached_captioner(kind: str, key: tuple, file_stamp: tuple) -> Captioner:
    config = CaptionConfig(**dict(key))
    if kind == "csv":
        return CsvCaptioner(config.csv)
    if kind == "vlm":
        return VlmCaptioner(config)
    return NoCaptioner()


def make_captioner(config: CaptionConfig) -> Captioner:
    """One captioner per worker process and setting."""
    from dataclasses import asdict

    # the CSV's size and mtime are part of the key: an edited CSV is read again
    stamp = ()
    if config.source == "csv" and config.csv and Path(config.csv).is_file():
        stat = Path(config.csv).stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
    return _cached_captioner(config.source, tuple(sorted(asdict(config).items())), stamp)
