"""The manifest, assembled from the job-state store: deterministic, so a resumed run writes the same file as a
clean one. Videos in name order, clips in start order, then near-duplicate removal (stage 9), then atomic writes of
manifest.jsonl, dropped.jsonl (every drop with its reason), funnel.json, funnel.md and contact_sheet.jpg.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .atomic import write_text_atomic
from .config import CurateConfig
from .dedup import find_near_duplicates
from .funnel import build_funnel, write_funnel
from .sheet import write_contact_sheet


def assemble(results: dict[str, dict], out_dir: Path, config: CurateConfig, ignored_files: int, sheet_clips: int = 0) -> dict:
    """Write manifest.jsonl, dropped.jsonl, funnel.{json,md} (and a contact sheet of `sheet_clips` clips) for
    `results` (name -> task result); returns the funnel."""
    ordered = [results[name] for name in sorted(results)]
    clips = [clip for result in ordered if result["status"] == "done" for clip in sorted(result["clips"], key=lambda c: c["start_frame"])]
    dropped = find_near_duplicates([c["meta"]["phash"] for c in clips], config.dedup.max_distance)
    kept = [c for i, c in enumerate(clips) if i not in dropped]
    reasons = {"near_duplicate": len(dropped)} if dropped else {}
    dedup = {"in": len(clips), "out": len(kept), "rejected": reasons,
             "duplicates": [{"dropped": clips[i]["id"], "of": clips[j]["id"]} for i, j in sorted(dropped.items())]}
    _remove_mask_files(out_dir, [clips[i]["id"] for i in dropped])
    write_text_atomic(out_dir / "manifest.jsonl", "".join(json.dumps(c, sort_keys=True) + "\n" for c in kept))
    write_text_atomic(out_dir / "dropped.jsonl", "".join(json.dumps(d, sort_keys=True) + "\n" for d in _drops(ordered, dedup)))
    funnel = build_funnel(ordered, dedup, ignored_files, config.fingerprint())
    write_funnel(funnel, out_dir)
    if sheet_clips:
        write_contact_sheet(kept, out_dir, sheet_clips)
    return funnel


def _drops(results: list[dict], dedup: dict):
    """Every video, shot and window that left the funnel, with its stage, reason and detail, in manifest order."""
    for result in results:
        if result["status"] == "error":
            yield {"video": result["name"], "stage": "error", "reason": "bug", "detail": result.get("error", "").strip().splitlines()[-1:]}
        if result.get("rejected"):
            yield {"video": result["name"], **result["rejected"]}
        for drop in result.get("dropped", []):
            yield {"video": result["name"], **drop}
    for pair in dedup["duplicates"]:
        yield {"clip": pair["dropped"], "stage": "dedup", "reason": "near_duplicate", "detail": f"of {pair['of']}"}


def _remove_mask_files(out_dir: Path, clip_ids: list[str]) -> None:
    """PNG masks of clips dropped as duplicates would otherwise be orphans in the dataset folder."""
    for clip in clip_ids:
        folder = out_dir / "masks" / clip
        if folder.is_dir():
            shutil.rmtree(folder)
