"""Whole runs: the story folder through every stage, the manifest through the training validator, a Ray run killed
with SIGKILL half-way and resumed, the CLI's exit codes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from curation_helpers import TEST_SET_ARGS


def _manifest_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _stage(funnel: dict, name: str) -> dict:
    return next(s for s in funnel["stages"] if s["stage"] == name)


def test_funnel_counts_every_stage_and_reason(clean_run):
    out, outcome = clean_run
    funnel = json.loads((out / "funnel.json").read_text())
    assert funnel["videos"] == 6 and funnel["ignored_files"] == 1 and funnel["errors"] == []
    expected = {
        # stage: (in, out, rejected)
        "probe": (6, 3, {"empty_file": 1, "not_a_video": 1, "truncated": 1}),
        "shots": (3, 9, {}),  # 4 shots in each story video, 1 in short.mp4
        "windows": (9, 10, {"shot_too_short": 1}),  # short.mp4's 12 frames; the pan holds 2 windows
        "faces": (10, 6, {"multiple_faces": 2, "no_face": 2}),
        "motion": (6, 4, {"still": 2}),
        "reference": (4, 4, {}),
        "masks": (4, 4, {}),
        "captions": (4, 4, {}),
        "dedup": (4, 2, {"near_duplicate": 2}),  # b_reupload.mp4 is a smaller re-encode of a_astronaut.mp4
    }
    for name, (n_in, n_out, rejected) in expected.items():
        stage = _stage(funnel, name)
        assert (stage["in"], stage["out"], stage["rejected"]) == (n_in, n_out, rejected), name
    assert _stage(funnel, "captions")["flagged"] == {"uncaptioned": 4}
    assert [d["of"].split("-")[0] for d in _stage(funnel, "dedup")["duplicates"]] == ["a_astronaut"] * 2
    whole = {r["video"]: (r["reason"], r["detail"]) for r in funnel["rejected_videos"]}
    assert whole["truncated.mp4"][0] == "truncated" and whole["truncated.mp4"][1].startswith("38 of 104")
    markdown = (out / "funnel.md").read_text()
    for word in ("near_duplicate: 2", "multiple_faces: 2", "no_face: 2", "still: 2", "shot_too_short: 1", "empty.mp4"):
        assert word in markdown
    assert outcome.processed == 6 and outcome.skipped == 0


def test_every_drop_is_listed_with_its_reason_and_the_kept_clips_are_drawn(clean_run):
    from PIL import Image

    out, _ = clean_run
    drops = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    summary = sorted((d.get("video") or d["clip"].split("-")[0], d["stage"], d["reason"]) for d in drops)
    story = [("faces", "multiple_faces"), ("faces", "no_face"), ("motion", "still")]
    assert summary == sorted(
        [("a_astronaut.mp4", *s) for s in story] + [("b_reupload.mp4", *s) for s in story]
        + [("b_reupload", "dedup", "near_duplicate")] * 2
        + [("empty.mp4", "probe", "empty_file"), ("notes.mp4", "probe", "not_a_video"),
           ("short.mp4", "windows", "shot_too_short"), ("truncated.mp4", "probe", "truncated")]
    )
    with Image.open(out / "contact_sheet.jpg") as sheet:  # 2 clips: a label strip and 4 tiles of 160 x 120 each
        assert sheet.size == (640, 2 * (16 + 120))
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    green = (pixels[..., 1] > 150) & (pixels[..., 0] < 90) & (pixels[..., 2] < 90)
    assert green[16:136, :480].sum() > 100  # the face boxes are drawn


def test_each_story_stretch_ends_where_it_should(clean_run):
    from proteus_id.curation.store import JobStore

    out, _ = clean_run
    store = JobStore(out / ".curate" / "state.sqlite")
    result = store.results(["a_astronaut.mp4"])["a_astronaut.mp4"]
    store.close()
    assert result["shots"] == [[0, 40], [40, 60], [60, 80], [80, 104]]
    dropped = {tuple(d["window"]): (d["stage"], d["reason"]) for d in result["dropped"]}
    assert dropped == {(42, 58): ("faces", "no_face"), (62, 78): ("faces", "multiple_faces"), (82, 100): ("motion", "still")}
    assert [(c["start_frame"], c["end_frame"]) for c in result["clips"]] == [(2, 20), (20, 38)]


def test_manifest_rows_are_right_and_pass_the_training_validator(clean_run, story_dir):
    from proteus_id.curation.scan import read_frames
    from proteus_id.curation.faces import face_detector
    from proteus_id.curation.config import FaceConfig
    from proteus_id.training.annotations import decode_rle
    from proteus_id.training.manifest import validate_manifest

    out, _ = clean_run
    rows = _manifest_rows(out)
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [(2, 20), (20, 38)]
    detector = face_detector(tuple(sorted(vars(FaceConfig()).items())))
    for row in rows:
        assert (out / row["video"]).resolve() == (story_dir / "a_astronaut.mp4").resolve()
        assert row["id"].startswith("a_astronaut-") and row["fps"] == 8.0
        assert row["caption"] is None and row["identity_prompt"] is None  # no captioner: nothing invented
        ref = row["reference"]["frame"]
        assert not row["start_frame"] <= ref < row["end_frame"]
        boxes = row["annotations"]["face_boxes"]
        assert len(boxes) == 18 and all(b is not None for b in boxes)
        # an interpolated box (frame 2 or 22: not a detector sample) sits on the face found there independently
        frame_index = row["start_frame"] + 2
        frame = read_frames(story_dir / "a_astronaut.mp4", [frame_index])[0]
        assert _iou(boxes[2], detector.detect(frame)[0]) > 0.7
        # the reference frame shows one face, which is the one the manifest names
        ref_frame = read_frames(story_dir / "a_astronaut.mp4", [ref])[0]
        assert _iou(row["meta"]["reference_box"], detector.detect(ref_frame)[0]) > 0.9
        masks = row["annotations"]["face_masks"]
        assert masks["size"] == [240, 320]
        first = decode_rle(masks["size"], masks["counts"][0]).astype(bool)
        x0, y0, x1, y1 = (int(round(v)) for v in boxes[0][:4])
        assert first[y0:y1, x0:x1].all() and first.sum() == (x1 - x0) * (y1 - y0)
        person = decode_rle(masks["size"], row["annotations"]["person_masks"]["counts"][0]).astype(bool)
        assert person.sum() > first.sum() and person[first].all()  # the body box contains the face
        assert 0.01 <= row["meta"]["scores"]["motion"] <= 0.6
    report = validate_manifest(out / "manifest.jsonl")
    assert report.ok, [i.errors for i in report.issues]
    assert report.trainable_rows == 0  # uncaptioned rows are well-formed, not trainable
    warnings = {w for issue in report.issues for w in issue.warnings}
    assert warnings == {"no caption: the row is well-formed but not trainable", "no identity_prompt: the row is well-formed but not trainable"}


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def test_a_rerun_skips_finished_videos(clean_run, story_dir, test_config):
    from proteus_id.curation import InProcessExecutor, curate

    out, _ = clean_run
    before = (out / "manifest.jsonl").read_bytes()
    outcome = curate(story_dir, out, test_config, InProcessExecutor(), progress=False)
    assert (outcome.processed, outcome.skipped) == (0, 6)
    assert (out / "manifest.jsonl").read_bytes() == before


def _done_rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM videos WHERE status = 'done'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def test_a_run_on_ray_killed_half_way_resumes_to_the_clean_manifest(ray_address, clean_run, story_dir, test_config, tmp_path):
    from proteus_id.curation import InProcessExecutor, curate

    clean_out, _ = clean_run
    out = tmp_path / "dataset"
    command = [sys.executable, "-m", "proteus_id.cli.main", "curate", "--input", str(story_dir), "--out", str(out),
               "--ray-address", ray_address, "--workers", "1", "--no-progress", *TEST_SET_ARGS]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = out / ".curate" / "state.sqlite"
    deadline = time.monotonic() + 120
    try:
        while _done_rows(store) == 0:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the first video never finished"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    done_at_kill = _done_rows(store)
    assert 1 <= done_at_kill < 6  # killed half-way: some videos finished, others not
    assert not (out / "manifest.jsonl").exists()  # the manifest is only written at the end

    # resume in this process (its models are loaded already): the final manifest mixes clips made by Ray workers in
    # the killed run and clips made here, and must still equal the clean in-process run byte for byte
    outcome = curate(story_dir, out, test_config, InProcessExecutor(), progress=False)
    assert outcome.processed == 6 - done_at_kill and outcome.skipped == done_at_kill
    assert (out / "manifest.jsonl").read_bytes() == (clean_out / "manifest.jsonl").read_bytes()
    ids = [r["id"] for r in _manifest_rows(out)]
    assert len(ids) == len(set(ids)) == 2
    resumed, clean = (json.loads((d / "funnel.json").read_text()) for d in (out, clean_out))
    for key in ("stages", "rejected_videos", "errors", "clips", "videos"):
        assert resumed[key] == clean[key], key


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    from proteus_id.cli.main import main

    assert main(["curate", "--input", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--executor", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: input") and "neither a folder" in err[0]
    assert main(["curate", "--input", str(tmp_path), "--out", str(tmp_path / "o"), "--executor", "local", "--set", "windows=3"]) == 2
    assert "SECTION.KEY=VALUE" in capsys.readouterr().err
    assert main(["curate", "--input", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "faces.detector=mtcnn"]) == 2
    assert "faces.detector" in capsys.readouterr().err


@pytest.fixture(scope="module")
def pan_video(tmp_path_factory) -> Path:
    """A 40-frame pan on the face, then a still stretch (the reference frames): 2 clips with the test windows."""
    from proteus_id.curation.synthetic import encode, story_segments

    segments = dict(story_segments())
    frames = np.concatenate([segments["pan_zoom_face"], segments["still_face"]])
    return encode(frames, tmp_path_factory.mktemp("pan") / "pan.mp4")


def test_csv_captions_and_png_masks_on_one_video(pan_video, tmp_path):
    """process_video directly: captions from a CSV, masks as PNG files."""
    from proteus_id.curation.config import load_config
    from proteus_id.curation.task import VideoJob, clip_id, process_video
    from proteus_id.training.manifest import validate_manifest

    video = pan_video
    first = clip_id("talk/pan.mp4", 2, 20)
    csv = tmp_path / "captions.csv"
    csv.write_text(f"id,caption,identity_prompt\n{first},A woman turns towards the camera.,A woman with short brown hair.\n")
    overrides = {"windows": {"min_frames": 14, "max_frames": 18}, "faces": {"embeddings_per_second": 0.5},
                 "captions": {"source": "csv", "csv": str(csv)}, "masks": {"format": "png"}}
    config = load_config(None, overrides)
    out = tmp_path / "dataset"
    job = VideoJob(str(video), "talk/pan.mp4", os.path.relpath(video, out))
    result = process_video(job, config.to_dict(), str(out))
    assert result["status"] == "done", result.get("error")
    clips = {c["id"]: c for c in result["clips"]}
    assert sorted(clips) == [first, clip_id("talk/pan.mp4", 20, 38)]
    assert clips[first]["caption"] == "A woman turns towards the camera."
    assert clips[first]["identity_prompt"] == "A woman with short brown hair." and clips[first]["meta"]["captioner"] == "csv"
    other = clips[clip_id("talk/pan.mp4", 20, 38)]
    assert other["caption"] is None and other["meta"]["captioner"] is None
    assert result["counts"]["captions"]["flagged"] == {"uncaptioned": 1}
    paths = clips[first]["annotations"]["person_masks"]["paths"]
    assert len(paths) == 18 and all((out / p).is_file() for p in paths)
    (out / "manifest.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips.values()))
    report = validate_manifest(out / "manifest.jsonl")
    assert report.ok and report.trainable_rows == 1, [i.errors for i in report.issues]


def test_vlm_captions_and_segmentation_masks_through_transformers(pan_video, tmp_path):
    """Tiny random models in the real loading path: whatever the VLM says is what the row says; masks stay in the box."""
    from proteus_id.curation.captions import ClipToCaption, make_captioner
    from proteus_id.curation.config import load_config
    from proteus_id.curation.task import VideoJob, process_video
    from proteus_id.testing.tiny import _WORDS
    from proteus_id.training.annotations import decode_rle
    from proteus_id.training.manifest import validate_manifest
    from curation_helpers import make_tiny_segmenter, make_tiny_vlm

    vlm, segmenter = make_tiny_vlm(tmp_path / "vlm"), make_tiny_segmenter(tmp_path / "seg")
    overrides = {"windows": {"min_frames": 14, "max_frames": 18}, "faces": {"embeddings_per_second": 0.5},
                 "captions": {"source": "vlm", "model": str(vlm), "max_new_tokens": 6},
                 "masks": {"source": "segmentation", "model": str(segmenter)}}
    config = load_config(None, overrides)
    out = tmp_path / "dataset"
    result = process_video(VideoJob(str(pan_video), "pan.mp4", os.path.relpath(pan_video, out)), config.to_dict(), str(out))
    assert result["status"] == "done", result.get("error")
    assert len(result["clips"]) == 2
    for clip in result["clips"]:
        for text in (clip["caption"], clip["identity_prompt"]):
            assert isinstance(text, str) and text and set(text.split()) <= set(_WORDS)  # the model's words, nothing added
        assert clip["meta"]["captioner"] == "vlm" and clip["meta"]["masks_source"] == "segmentation"
        masks = clip["annotations"]["person_masks"]
        for counts, box in zip(masks["counts"], clip["annotations"]["person_boxes"]):
            mask = decode_rle(masks["size"], counts).astype(bool)
            x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
            inside = np.zeros_like(mask)
            inside[y0:y1, x0:x1] = True
            assert not (mask & ~inside).any()  # other people in the frame are cut away by the body box
    out.mkdir(exist_ok=True)
    (out / "manifest.jsonl").write_text("".join(json.dumps(c) + "\n" for c in result["clips"]))
    report = validate_manifest(out / "manifest.jsonl")
    assert report.ok and report.trainable_rows == 2, [i.errors for i in report.issues]

    asked = []
    frame = np.full((240, 320, 3), 128, np.uint8)
    captioner = make_captioner(config.captions)
    captioner(ClipToCaption("c", "v.mp4", 10, 28, lambda idx: asked.extend(idx) or [frame for _ in idx], 50, [0, 0, 64, 64, 1.0]))
    assert asked == [13, 18, 24, 50]  # 3 frames spread over the clip (10 + 17 x 1/6, 3/6, 5/6), then the reference


def test_a_ray_worker_that_dies_becomes_an_error_result_not_a_crashed_run(ray_address):
    from proteus_id.curation import RayExecutor

    def square_or_die(x):
        if x == 2:
            os._exit(3)  # the worker process dies, as on a segfault in a decoder or the kernel's OOM killer
        return x * x

    executor = RayExecutor(workers=2)
    results = executor.map_unordered(square_or_die, [1, 2, 3], on_failure=lambda item, message: ("failed", item, message))
    got = list(results)
    executor.close()
    assert sorted(r for r in got if isinstance(r, int)) == [1, 9]
    failed = [r for r in got if isinstance(r, tuple)]
    assert len(failed) == 1 and failed[0][:2] == ("failed", 2) and "WorkerCrashedError" in failed[0][2]
