"""One video through stages 1-8: the unit of work a Ray task (or the in-process executor) runs.

It returns a plain dict (JSON-ready): the manifest rows of the clips it kept, every window it dropped with the stage
and reason, and per-stage counts for the funnel. It writes nothing but mask PNGs (when that format is chosen),
each atomically, at paths fixed by the clip id, so a rerun of a killed video overwrites rather than duplicates.
Near-duplicate removal (stage 9) needs every clip and runs when the manifest is assembled (assemble.py).
"""

from __future__ import annotations

import hashlib
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .captions import ClipToCaption, make_captioner
from .config import CurateConfig, config_from_dict
from .masks import box_mask, masks_annotation, person_segmenter
from .motion import judge_motion, window_motion
from .probe import VideoRejected, probe_video
from .reference import choose_reference
from .scan import read_frames_streaming, scan_video
from .tracking import interpolate_boxes, judge_track, person_box
from .windows import shot_windows

STAGES = ["probe", "shots", "windows", "faces", "motion", "reference", "masks", "captions", "dedup"]


@dataclass
class VideoJob:
    path: str  # absolute path of the source video
    name: str  # as curated: relative to the input folder or list (ids and CSV captions use it)
    manifest_path: str  # the video's path relative to the manifest's folder


def clip_id(name: str, start: int, end: int) -> str:
    """Stable across reruns and machines: a readable stem, a hash of the full name, the frame range."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", Path(name).with_suffix("").as_posix()).strip("_")[-40:] or "video"
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{stem}-{digest}-{start:06d}-{end:06d}"


def _counts() -> dict:
    # "rejected": clips (or videos, shots) that leave here, by reason; "flagged": kept, but marked (uncaptioned)
    return {stage: {"in": 0, "out": 0, "rejected": {}, "flagged": {}} for stage in STAGES[:-1]}


def _reject(counts: dict, stage: str, reason: str) -> None:
    counts[stage]["rejected"][reason] = counts[stage]["rejected"].get(reason, 0) + 1


def _empty_result(name: str) -> dict:
    return {"name": name, "status": "done", "rejected": None, "info": None, "shots": [], "clips": [], "dropped": [], "counts": _counts()}


def failed_result(job: VideoJob, message: str) -> dict:
    """The result of a task that died without returning (its worker crashed): an error, retried on the next run."""
    return {**_empty_result(job.name), "status": "error", "error": message, "seconds": 0.0}


def process_video(job: VideoJob, config_values: dict, out_dir: str) -> dict:
    """Never raises: a bug inside is returned as status "error" with its traceback (the run reports it, exit 1)."""
    started = time.perf_counter()
    result = _empty_result(job.name)
    try:
        _run_stages(job, config_from_dict(config_values), Path(out_dir), result)
    except VideoRejected as rejection:
        _reject(result["counts"], rejection.stage, rejection.reason)
        result["rejected"] = {"stage": rejection.stage, "reason": rejection.reason, "detail": rejection.detail}
    except Exception:  # noqa: BLE001 - recorded with its traceback, counted, retried on the next run
        result.update(status="error", error=traceback.format_exc(limit=20), clips=[])
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _run_stages(job: VideoJob, config: CurateConfig, out_dir: Path, result: dict) -> None:
    import cv2

    cv2.setNumThreads(1)  # one task per core: the executor provides the parallelism
    counts = result["counts"]
    counts["probe"]["in"] = 1
    info = probe_video(job.path, config.probe)
    result["info"] = info.to_dict()
    scan = scan_video(job.path, info, config)
    counts["probe"]["out"] = 1
    result["info"]["decoded_frames"] = scan.frames
    frame_size = (info.width, info.height)

    counts["shots"].update({"in": 1, "out": len(scan.shots)})
    result["shots"] = [list(s) for s in scan.shots]
    windows = []
    for shot in scan.shots:
        found = shot_windows(shot, config.windows)
        counts["windows"]["in"] += 1
        counts["windows"]["out"] += len(found)
        if not found:
            _reject(counts, "windows", "shot_too_short")
            result["dropped"].append({"shot": list(shot), "stage": "windows", "reason": "shot_too_short", "detail": f"{shot[1] - shot[0]} frames"})
        windows += [(shot, w) for w in found]

    kept = []
    for shot, window in windows:
        candidate = _judge_window(shot, window, scan, frame_size, config, result)
        if candidate is not None:
            kept.append(candidate)
    if not kept:
        return

    # one more decoding pass, only for the stages that need pixels (a segmentation model, a VLM), over every kept
    # clip at once, so the cost does not grow with the number of clips
    m = config.masks
    captioner = make_captioner(config.captions)
    for c in kept:
        c.caption_request = ClipToCaption(c.id(job.name), job.name, c.start, c.end, None, c.reference.index, c.reference.main)
    segment = m.source == "segmentation" and m.format != "none"
    seg_frames = {i for c in kept for i in range(c.start, c.end)} if segment else set()
    cap_frames = {i for c in kept for i in captioner.frames_needed(c.caption_request)}
    pixels = {}
    if seg_frames or cap_frames:
        segmenter = person_segmenter(m.model) if segment else None
        for index, frame in read_frames_streaming(job.path, seg_frames | cap_frames):
            if index in cap_frames:
                pixels[index] = frame
            if index in seg_frames:
                for c in kept:
                    if c.start <= index < c.end:
                        c.person_masks[index - c.start] = segmenter.person_mask(frame, c.person_boxes[index - c.start])

    for c in kept:
        identifier = c.id(job.name)
        annotations = {"face_boxes": c.face_boxes, "person_boxes": c.person_boxes}
        counts["masks"]["in"] += 1
        if m.format != "none":
            size = (info.height, info.width)
            face_masks = [box_mask(b, size) for b in c.face_boxes]
            person_masks = c.person_masks if segment else [box_mask(b, size) for b in c.person_boxes]
            annotations["face_masks"] = masks_annotation(face_masks, m.format, out_dir, f"{identifier}/face")
            annotations["person_masks"] = masks_annotation(person_masks, m.format, out_dir, f"{identifier}/person")
        counts["masks"]["out"] += 1

        counts["captions"]["in"] += 1
        c.caption_request.frames = lambda indices: [pixels[i] for i in indices]
        caption, identity = captioner(c.caption_request)
        counts["captions"]["out"] += 1
        if caption is None:
            flagged = counts["captions"]["flagged"]
            flagged["uncaptioned"] = flagged.get("uncaptioned", 0) + 1

        result["clips"].append({
            "version": 1,
            "id": identifier,
            "video": job.manifest_path,
            "start_frame": c.start,
            "end_frame": c.end,
            "fps": info.fps,
            "caption": caption,
            "identity_prompt": identity,
            "reference": {"frame": c.reference.index},
            "annotations": annotations,
            "meta": {
                "source": job.name,
                "shot": list(c.shot),
                "width": info.width,
                "height": info.height,
                "reference_box": c.reference.main,
                "scores": c.scores,
                "face_detector": config.faces.detector,
                "masks_source": m.source if m.format != "none" else None,
                "person_boxes_source": "face_box_grown",
                "captioner": captioner.name if caption is not None else None,
                "phash": c.phashes,
            },
        })


@dataclass
class _Candidate:
    """A window that passed the pixel-free stages (faces, motion, reference), waiting for masks and captions."""

    shot: tuple[int, int]
    start: int
    end: int
    reference: object  # SampledFrame
    scores: dict
    face_boxes: list
    person_boxes: list
    phashes: list
    person_masks: list = field(default_factory=list)
    caption_request: ClipToCaption | None = None

    def id(self, name: str) -> str:
        return clip_id(name, self.start, self.end)


def _judge_window(shot, window, scan, frame_size, config: CurateConfig, result: dict) -> _Candidate | None:
    counts = result["counts"]
    start, end = window

    def drop(stage: str, reason: str, detail: str) -> None:
        _reject(counts, stage, reason)
        result["dropped"].append({"window": [start, end], "stage": stage, "reason": reason, "detail": detail})

    shot_samples = [s for s in scan.samples if shot[0] <= s.index < shot[1]]
    in_window = [s for s in shot_samples if start <= s.index < end]
    counts["faces"]["in"] += 1
    verdict = judge_track(in_window, frame_size, config.faces, scan.face_stride)
    if not verdict.ok:
        drop("faces", verdict.reason, verdict.detail)
        return None
    counts["faces"]["out"] += 1

    counts["motion"]["in"] += 1
    motion = window_motion(scan.motion, start, end)
    ok, reason, detail = judge_motion(motion, config.motion)
    if not ok:
        drop("motion", reason, detail)
        return None
    counts["motion"]["out"] += 1

    counts["reference"]["in"] += 1
    reference, why = choose_reference(scan.samples, window, verdict.mean_embedding, frame_size, config.reference, config.faces)
    if reference is None:
        drop("reference", "no_reference", why)
        return None
    counts["reference"]["out"] += 1

    m = config.masks
    face_boxes = interpolate_boxes(shot_samples, start, end, max_gap=2 * scan.face_stride)
    person_boxes = [person_box(b, frame_size, m.person_width, m.person_top, m.person_height) for b in face_boxes]
    quarters = [start + (end - start) * k // 4 for k in (1, 2, 3)]
    phashes = [min(in_window, key=lambda s: (abs(s.index - t), s.index)).phash for t in quarters]
    return _Candidate(shot, start, end, reference, {**verdict.scores, "motion": motion}, face_boxes, person_boxes,
                      phashes, person_masks=[None] * (end - start))
