"""World clips on disk: mp4 videos, reference face crops and a training manifest v1 (docs/manifest.md).

    out/manifest.jsonl         one row per clip: caption, identity prompt, reference image, exact boxes and masks
    out/videos/<clip>.mp4      17 frames, 64 x 64, 8 fps, H.264 yuv444p (full colour resolution at this size)
    out/refs/<clip>.png        the clip's reference face: the same person in another setting ("cross-face")

With `contrast` ("opposite" or "still") each clip is replaced by its *motion partner*: the same person, clothes,
place, light and per-clip randomness, with only the motion changed as `captions.contrast_prompt` changes the
caption (turns, walks, closer / away mirrored; other motions -> still), under the same clip id, so that a feature
cache of the partners pairs item by item with the clips' cache (training's `loss.motion_contrast_weight`). Clips
whose partner would be themselves (still clips) are left out and counted.

Rendering is resumable: rows already in `manifest.jsonl` or in the append-only log `manifest.jsonl.partial` whose
files exist are kept; the manifest itself is written (atomically) when every clip is done, and the log removed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .traits import DEFAULT_WORLD_SEED, identity_numbers
from .world import FPS, NUM_FRAMES, ClipSpec, make_clip, render_clip, render_reference

VIDEO_CRF = 4


def clip_row(spec, clip, video_rel: str, ref_rel: str) -> dict:
    from ..training.annotations import rle_dict

    return {
        "version": 1, "id": spec.clip_id, "video": video_rel, "start_frame": 0, "end_frame": len(clip.frames),
        "fps": float(FPS), "caption": spec.caption, "identity_prompt": spec.identity_prompt,
        "reference": {"image": ref_rel},
        "annotations": {
            "face_boxes": [[round(float(v), 2) for v in box] + [1.0] for box in clip.face_boxes],
            "face_masks": rle_dict(clip.face_masks),
            "person_masks": rle_dict(clip.person_masks),
        },
        "meta": {"source": "toyworld", "world_seed": spec.world_seed, "identity": spec.identity.number,
                 "clip_index": spec.clip_index, "scene": spec.scene.to_dict(), "licence": "generated, CC0"},
    }


def motion_partner(spec: ClipSpec, kind: str = "opposite") -> ClipSpec | None:
    """The clip with only its motion changed (see the module docstring), or None when that is the clip itself."""
    import dataclasses

    from .captions import contrast_motion, contrast_prompt, parse_prompt

    partner_motion = contrast_motion(spec.scene.motion, kind)
    if spec.scene.motion == "still":
        return None
    text = contrast_prompt(spec.caption, kind)
    if parse_prompt(text).get("motion", "still") != partner_motion:  # the caption tables and the scene disagree
        raise ValueError(f"{spec.clip_id}: the contrast caption {text!r} does not read as {partner_motion!r}")
    scene = dataclasses.replace(spec.scene, motion=partner_motion)
    return dataclasses.replace(spec, scene=scene, caption=text)


def render_dataset(out_dir: str | Path, split: str = "train", identities: int = 3000, clips_per_identity: int = 2,
                   first_identity: int = 0, world_seed: int = DEFAULT_WORLD_SEED, progress: bool = True,
                   contrast: str | None = None) -> dict:
    """Render `identities` x `clips_per_identity` clips of `split` (or, with `contrast`, their motion partners) and
    their manifest; returns a summary."""
    from tqdm import tqdm

    from ..pipeline.video import write_video

    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "refs").mkdir(parents=True, exist_ok=True)
    partial = out / "manifest.jsonl.partial"
    manifest = out / "manifest.jsonl"
    done: dict[str, dict] = {}
    for previous in (manifest, partial):  # a finished earlier run, then an interrupted one
        if not previous.is_file():
            continue
        for line in previous.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill; the clip is rendered again
            if (out / row["video"]).is_file() and (out / row["reference"]["image"]).is_file():
                done[row["id"]] = row
    numbers = identity_numbers(split, first_identity + identities)[first_identity:]
    kept = len(done)
    rows = []
    no_partner = 0
    with open(partial, "a") as log:
        for number in tqdm(numbers, desc=f"render {split}", disable=not progress):
            for k in range(clips_per_identity):
                spec = make_clip(number, k, world_seed)
                if contrast is not None:
                    spec = motion_partner(spec, contrast)
                    if spec is None:
                        no_partner += 1
                        continue
                if spec.clip_id in done:
                    rows.append(done[spec.clip_id])
                    continue
                clip = render_clip(spec)
                video_rel, ref_rel = f"videos/{spec.clip_id}.mp4", f"refs/{spec.clip_id}.png"
                write_video(clip.frames, out / video_rel, fps=FPS, crf=VIDEO_CRF, pix_fmt="yuv444p")
                ref = render_reference(spec.identity, variant=k, world_seed=world_seed)
                tmp = out / f"refs/.{spec.clip_id}.tmp.png"
                ref.save(tmp)
                os.replace(tmp, out / ref_rel)
                row = clip_row(spec, clip, video_rel, ref_rel)
                log.write(json.dumps(row) + "\n")
                log.flush()
                rows.append(row)
    tmp = out / ".manifest.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, manifest)
    partial.unlink()  # every row is in the manifest now; a re-run reads them from there
    summary = {"manifest": str(manifest), "rows": len(rows), "written": len(rows) - kept, "kept": kept}
    if contrast is not None:
        summary["skipped_still"] = no_partner  # a still clip's partner would be itself
    return summary


def motion_subset(manifest: str | Path, name: str, body_every: int) -> dict:
    """Write `name` beside `manifest`: every clip whose caption asks for a face-level motion (or none) and every
    `body_every`-th of the clips whose caption asks for a body motion, in manifest order. The rows are copied
    unchanged (their paths stay relative to the same folder), so the subset shares the videos and can be
    precomputed into a cache of its own. Returns the counts per motion kept and dropped."""
    from collections import Counter

    from ..atomic import write_text_atomic
    from ..errors import UserError
    from .captions import parse_prompt
    from .traits import BODY_MOTIONS

    source = Path(manifest)
    if body_every < 1:
        raise UserError(f"--body-every must be at least 1, got {body_every}")
    if Path(name).name != name or not name.endswith(".jsonl"):
        raise UserError(f"--name must be a file name ending in .jsonl (written beside the manifest), got {name!r}")
    target = source.parent / name
    if target.resolve() == source.resolve():
        raise UserError("--name must differ from the manifest's own name")
    try:
        lines = source.read_text().splitlines()
    except OSError as err:
        raise UserError(f"cannot read {source}: {err.strerror or err}") from None
    kept, dropped, body_seen = Counter(), Counter(), 0
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            motion = parse_prompt(row["caption"]).get("motion", "none")
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{source} line {number}: not a manifest row with a caption") from None
        if motion in BODY_MOTIONS:
            body_seen += 1
            if body_seen % body_every:
                dropped[motion] += 1
                continue
        kept[motion] += 1
        out.append(line + "\n")  # the row as written, not re-serialised
    write_text_atomic(target, "".join(out))
    return {"manifest": str(target), "rows": len(out), "kept": dict(kept), "dropped": dict(dropped)}


def contact_sheet(path: str | Path, rows: int = 11, world_seed: int = DEFAULT_WORLD_SEED, first: int = 1000,
                  scale: int = 2) -> Path:
    """One row per motion: the reference crop, then every other frame of a clip (PNG, nearest-neighbour upscaled)."""
    from PIL import Image

    from .traits import MOTIONS

    lines = []
    for i in range(rows):
        spec = make_clip(first + i, 0, world_seed, motion=MOTIONS[i % len(MOTIONS)])
        clip = render_clip(spec)
        ref = np.asarray(render_reference(spec.identity, 0, world_seed=world_seed))
        lines.append(np.concatenate([ref] + [clip.frames[k] for k in range(0, NUM_FRAMES, 2)], axis=1))
    image = Image.fromarray(np.concatenate(lines, axis=0))
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


__all__ = ["render_dataset", "contact_sheet", "clip_row", "identity_numbers", "motion_partner"]
