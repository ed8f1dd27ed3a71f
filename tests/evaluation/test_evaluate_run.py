"""`proteus-id evaluate` end to end on videos made from real photos: numbers per video, failed rows with reasons,
the tables and the report, the CLI's exit codes, plug-in metrics, and resuming after a real kill."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proteus_id.evaluation.config import EvalConfig
from proteus_id.evaluation.runner import run_evaluation

FAST = dict(sample_frames=6)  # 6 of 17 frames keep the run short; the protocol's 16 is the default


@pytest.fixture(scope="module")
def evaluated(video_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out")
    result = run_evaluation(video_set / "run.jsonl", out, EvalConfig(**FAST), progress=False)
    return result, out


def _by_kind(result):
    return {r["extra"]["kind"] + ("" if r["extra"]["kind"] != "broken" else str(r["index"])): r for r in result.records}


def test_still_video_of_the_reference_scores_high_identity_and_no_motion(evaluated):
    result, _ = evaluated
    still = _by_kind(result)["still"]
    m = still["metrics"]
    assert still["status"] == "ok"
    metrics = still["metrics"]
    assert metrics["face_detection_rate"] == 1.0
    # the same photo, resized to 256 px and H.264-encoded: far inside dlib's same-person distance
    assert metrics["facesim_dlib"] > 0.95, m
    assert metrics["face_distance_dlib"] < 0.45
    assert metrics["face_match_rate_dlib"] == 1.0
    assert metrics["facesim_dlib_std"] < 0.01
    assert metrics["dynamic_degree"] == 0.0
    assert metrics["flow_magnitude"] < 0.05
    assert metrics["motion_smoothness"] > 0.999
    assert metrics["temporal_flicker"] < 0.1


def test_panned_and_zoomed_photo_counts_as_moving(evaluated):
    result, _ = evaluated
    pan = _by_kind(result)["pan"]["metrics"]
    assert pan["dynamic_degree"] == 1.0
    assert pan["flow_magnitude"] > 2.0  # the window slides ~12 px per frame at 256 px
    assert pan["face_detection_rate"] == 1.0
    assert pan["facesim_dlib"] > 0.9  # still the same person
    assert pan["motion_smoothness"] < 1.0


def test_faceless_video_gives_detection_rate_zero_and_no_facesim(evaluated):
    result, _ = evaluated
    coffee = _by_kind(result)["faceless"]
    assert coffee["status"] == "ok"
    assert coffee["metrics"]["face_detection_rate"] == 0.0
    assert "facesim_dlib" not in coffee["metrics"]  # undefined, not a made-up 0
    assert coffee["notes"]["facesim_dlib"] == "no face in any sampled frame"
    assert coffee["metrics"]["dynamic_degree"] == 0.0


def test_corrupt_and_zero_byte_videos_are_failed_rows_with_reasons(evaluated):
    result, _ = evaluated
    failed = {r["video"].rsplit("/", 1)[-1]: r for r in result.records if r["status"] == "failed"}
    assert set(failed) == {"corrupt.mp4", "empty.mp4"}
    assert "zero-byte" in failed["empty.mp4"]["reason"]
    assert failed["corrupt.mp4"]["reason"].startswith("unreadable video")
    counts = result.summary["counts"]
    assert counts == {"rows": 5, "ok": 3, "failed": 2, "evaluated_this_run": 5, "reused_from_earlier_runs": 0}


def test_tables_and_report(evaluated, video_set):
    result, out = evaluated
    with open(out / "per_video.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "failed", "failed"]
    assert rows[0]["kind"] == "still"  # extra manifest keys are kept as columns
    assert float(rows[0]["facesim_dlib"]) == pytest.approx(result.records[0]["metrics"]["facesim_dlib"], rel=1e-5)
    assert rows[2]["facesim_dlib"] == ""  # empty cell, not 0
    summary = json.loads((out / "summary.json").read_text())
    dd = summary["metrics"]["dynamic_degree"]
    assert dd["n"] == 3 and dd["mean"] == pytest.approx(1 / 3)
    lo, hi = summary["metrics"]["facesim_dlib"]["ci95"]
    assert lo <= summary["metrics"]["facesim_dlib"]["mean"] <= hi
    # absent weights: skipped with a reason, never a number
    assert set(summary["skipped_metrics"]) == {"facesim_arc", "facesim_cur", "clipscore", "fid"}
    assert "facesim_arc" not in summary["metrics"]
    md = (out / "report.md").read_text()
    assert "Skipped metrics" in md and "no ArcFace ONNX weights" in md
    page = (out / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 3  # a contact sheet per readable video
    assert "data:image/png;base64," in page  # plots
    assert 'src="http' not in page and "src='http" not in page  # self-contained
    assert len(list((out / "sheets").glob("*.jpg"))) == 3


def test_rerun_reuses_every_row(evaluated, video_set):
    result, out = evaluated
    again = run_evaluation(video_set / "run.jsonl", out, EvalConfig(**FAST), progress=False)
    assert again.summary["counts"]["evaluated_this_run"] == 0
    assert again.summary["counts"]["reused_from_earlier_runs"] == 5
    assert again.records[0]["metrics"] == result.records[0]["metrics"]


def test_a_video_regenerated_at_the_same_path_is_evaluated_again(video_set, tmp_path):
    import shutil

    for name in ("still.mp4", "pan.mp4", "astronaut.png"):
        shutil.copy(video_set / name, tmp_path / name)
    rows = [{"image": "astronaut.png", "prompt": "a woman", "video": v} for v in ("still.mp4", "pan.mp4")]
    (tmp_path / "run.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = EvalConfig(sample_frames=4, metrics=["motion"])
    first = run_evaluation(tmp_path / "run.jsonl", tmp_path / "out", config, progress=False)
    assert [r["metrics"]["dynamic_degree"] for r in first.records] == [0.0, 1.0]

    shutil.copy(video_set / "pan.mp4", tmp_path / "still.mp4")  # same path and manifest row, other content
    again = run_evaluation(tmp_path / "run.jsonl", tmp_path / "out", config, progress=False)
    assert again.summary["counts"]["evaluated_this_run"] == 1  # the unchanged pan row is reused
    assert [r["metrics"]["dynamic_degree"] for r in again.records] == [1.0, 1.0]


def test_plugin_metric_gets_video_and_row(video_set, tmp_path):
    from proteus_id.evaluation.metrics import register_metric, unregister_metric

    def judge(video, row):
        return {"judge_frames": video.num_frames, "judge_prompt_words": len((row.prompt or "").split())}

    register_metric("judge", judge, columns=("judge_frames", "judge_prompt_words"))
    try:
        result = run_evaluation(video_set / "run.jsonl", tmp_path, EvalConfig(sample_frames=4, metrics=["judge"]),
                                progress=False)
    finally:
        unregister_metric("judge")
    still = result.records[0]["metrics"]
    assert still == {"judge_frames": 17.0, "judge_prompt_words": 7.0}
    assert result.summary["metrics"]["judge_frames"]["n"] == 3


def _cli(*args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "proteus_id.cli.main", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_cli_bad_manifest_is_one_line_exit_2(tmp_path):
    from proteus_id.cli.main import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"video": "a.mp4"}\nnot json\n')
    assert main(["evaluate", "--manifest", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert main(["evaluate", "--manifest", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]) == 2


def test_killed_run_resumes_and_evaluates_each_video_once(video_set, tmp_path, monkeypatch):
    """A real SIGKILL half-way through a CLI run; the rerun evaluates only the rows that had not finished."""
    plugin = tmp_path / "slow_probe.py"
    plugin.write_text(
        "import time\nfrom proteus_id.evaluation import register_metric\n"
        "def probe(video, row):\n    time.sleep(0.4)\n    return float(video.num_frames)\n"
        "register_metric('slow_probe', probe)\n"
    )
    rows = [json.loads(line) for line in (video_set / "run.jsonl").read_text().splitlines()][:2]
    manifest = tmp_path / "run.jsonl"
    manifest.write_text("".join(json.dumps({**r, "video": str(video_set / r["video"]), "image": str(video_set / r["image"]),
                                            "copy": k}) + "\n" for k in range(3) for r in rows))  # 6 rows
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    proc = _cli("evaluate", "--manifest", str(manifest), "--out", str(out), "--metrics", "slow_probe",
                "--plugin", "slow_probe", "--no-progress", env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "rows").glob("*.json"))) < 2:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_bytes() for p in (out / "rows").glob("*.json")}
    assert 2 <= len(before) < 6, "the kill must land half-way"
    assert not (out / "summary.json").exists()

    monkeypatch.syspath_prepend(str(tmp_path))  # the rerun, in this process, imports the same plug-in
    from proteus_id.evaluation.metrics import unregister_metric

    try:
        result = run_evaluation(manifest, out, EvalConfig(metrics=["slow_probe"]), plugins=["slow_probe"], progress=False)
    finally:
        unregister_metric("slow_probe")
    counts = result.summary["counts"]
    assert counts["rows"] == 6 and counts["ok"] == 6
    assert counts["evaluated_this_run"] == 6 - len(before)
    after = {p.name: p.read_bytes() for p in (out / "rows").glob("*.json")}
    assert len(after) == 6
    assert all(after[name] == data for name, data in before.items())  # finished rows were not evaluated again
    assert {json.loads(d)["metrics"]["slow_probe"] for d in after.values()} == {17.0}
    assert not list((out / "rows").glob(".*tmp"))  # a half-written file of the killed process is cleaned up


@pytest.mark.slow
def test_two_processes_split_the_rows(video_set, tmp_path):
    """`torchrun --nproc_per_node 2` on this CPU machine: each process evaluates its half, one summary."""
    plugin = tmp_path / "pid_probe.py"
    plugin.write_text("import os\nfrom proteus_id.evaluation import register_metric\n"
                      "register_metric('pid_probe', lambda video, row: float(os.getpid()))\n")
    rows = [json.loads(line) for line in (video_set / "run.jsonl").read_text().splitlines()][:2]
    manifest = tmp_path / "run.jsonl"
    manifest.write_text("".join(json.dumps({**r, "video": str(video_set / r["video"]), "image": str(video_set / r["image"]),
                                            "copy": k}) + "\n" for k in range(2) for r in rows))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29571", "-m", "proteus_id.cli.main",
                           "evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "out"), "--metrics", "pid_probe",
                           "--plugin", "pid_probe", "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"] == {"rows": 4, "ok": 4, "failed": 0, "evaluated_this_run": 4, "reused_from_earlier_runs": 0}
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "out" / "rows").glob("*.json"))]
    pids = [r["pid"] for r in records]
    assert pids[0] == pids[2] and pids[1] == pids[3] and pids[0] != pids[1]  # rows 0, 2 and 1, 3: every 2nd row
    assert len({r["run_id"] for r in records}) == 1


def test_unreadable_reference_image_fails_the_row(video_set, tmp_path):
    from proteus_id.evaluation.manifest import EvalRow
    from proteus_id.evaluation.runner import evaluate_row

    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG not really")
    row = EvalRow(index=0, video=video_set / "still.mp4", image=bad, prompt="x", raw={"video": "still.mp4"})
    record, arrays, sheet = evaluate_row(row, [], EvalConfig(sample_frames=4))
    assert record["status"] == "failed" and record["reason"].startswith("unreadable image")
    assert "photo.png" in record["reason"] and arrays == {} and sheet is None
