"""The ablation's baselines and its table: baselines mean what their names say (checked with the shipped judges),
the table carries every row's numbers, and the trained-model folder links the right parts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from proteus_id.errors import UserError
from proteus_id.evaluation.suite.schema import load_suite
from proteus_id.toyworld.ablation import (
    assemble_trained_model,
    baseline_frames,
    sampling_budget,
    vae_roundtrip,
    write_baseline_videos,
    write_table,
)
from proteus_id.toyworld.judge_eval import JudgeSet
from proteus_id.toyworld.ship import JUDGES_DIR
from proteus_id.toyworld.suite import write_suite
from proteus_id.toyworld.traits import DEFAULT_WORLD_SEED


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return load_suite(write_suite(tmp_path_factory.mktemp("suite"), prompts_per_identity=1))


def test_baselines_by_the_judges(suite):
    judges = JudgeSet.load(JUDGES_DIR)
    same, other, still_motion = [], [], []
    for job in suite.jobs()[:8]:
        number = int(job.identity.id[4:])
        reference = np.asarray(Image.open(job.identity.image).convert("RGB"))
        truth = baseline_frames("true_render", number, job.text, reference, DEFAULT_WORLD_SEED)
        wrong = baseline_frames("other_identity", number, job.text, reference, DEFAULT_WORLD_SEED, (number + 75) % 150)
        copy = baseline_frames("copy_paste", number, job.text, reference, DEFAULT_WORLD_SEED)
        assert truth.shape == wrong.shape == copy.shape == (17, 64, 64, 3)
        assert (copy == copy[:1]).all()  # the reference, repeated
        assert judges.text_alignment(truth, job.text)["text_alignment"] >= 0.5  # the prompt, rendered
        same.append(judges.identity_similarity(job.identity.image, truth).mean())
        other.append(judges.identity_similarity(job.identity.image, wrong).mean())
        still_motion.append(judges.motion(copy)["motion"])
    assert np.mean(same) > np.mean(other) + 0.3, (same, other)
    assert still_motion.count("still") >= 6


def test_vae_roundtrip_baseline_is_the_render_through_the_shipped_vae(suite):
    from diffusers import AutoencoderKLCogVideoX

    from proteus_id.defaults import DEFAULT_MODEL_DIR

    vae = AutoencoderKLCogVideoX.from_pretrained(str(DEFAULT_MODEL_DIR / "vae")).eval()
    judges = JudgeSet.load(JUDGES_DIR)
    job = suite.jobs()[10]  # a walk to the right: the round trip must keep the motion too
    number = int(job.identity.id[4:])
    reference = np.asarray(Image.open(job.identity.image).convert("RGB"))
    truth = baseline_frames("true_render", number, job.text, reference, DEFAULT_WORLD_SEED)
    trip = baseline_frames("vae_roundtrip", number, job.text, reference, DEFAULT_WORLD_SEED, vae=vae)
    assert trip.shape == truth.shape and trip.dtype == np.uint8
    error = trip.astype(np.float64) - truth
    psnr = 10 * np.log10(255.0**2 / np.mean(error**2))
    assert 22.0 < psnr < 60.0, psnr  # lossy, but the same video (the shipped VAE measured ~28 dB)
    np.testing.assert_array_equal(trip, vae_roundtrip(truth, vae))
    assert judges.motion(trip)["motion"] == judges.motion(truth)["motion"] == "walk right"
    boxes = judges.locate(trip)
    assert (boxes[-1, 0] + boxes[-1, 2] - boxes[0, 0] - boxes[0, 2]) / 2 > 20  # px: the person crosses the frame
    with pytest.raises(UserError, match="needs the model's VAE"):
        baseline_frames("vae_roundtrip", number, job.text, reference, DEFAULT_WORLD_SEED)


def test_a_prompt_outside_the_world_is_refused():
    with pytest.raises(UserError, match="does not name"):
        baseline_frames("true_render", 0, "A person dances in the rain.", np.zeros((64, 64, 3), np.uint8),
                        DEFAULT_WORLD_SEED)


def test_baseline_videos_are_kept_on_a_rerun(suite, tmp_path):
    import proteus_id.toyworld.ablation as ablation

    small = tmp_path / "suite.jsonl"
    lines = [json.loads(line) for line in suite.path.read_text().splitlines()]
    keep = {"eval000", "eval001"}
    rows = [r for r in lines if r["type"] == "suite" or (r["type"] == "identity" and r["id"] in keep)
            or (r["type"] == "prompt" and r["id"].split("-")[0] in keep)
            or (r["type"] == "job" and r["identity"] in keep)]
    for r in rows:
        if r["type"] == "identity":
            r["image"] = str(suite.path.parent / r["image"])
    small.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = write_baseline_videos("true_render", small, tmp_path / "run")
    videos = sorted((tmp_path / "run" / "videos").glob("*.mp4"))
    assert len(videos) == 2 and len(manifest.read_text().splitlines()) == 2
    stamps = [v.stat().st_mtime_ns for v in videos]
    calls = []
    original = ablation.baseline_frames
    ablation.baseline_frames = lambda *a, **k: calls.append(a) or original(*a, **k)
    try:
        write_baseline_videos("true_render", small, tmp_path / "run")
    finally:
        ablation.baseline_frames = original
    assert calls == [] and [v.stat().st_mtime_ns for v in videos] == stamps


def _summary(facesim: float, n: int = 10) -> dict:
    return {"counts": {"rows": n, "ok": n, "failed": 0},
            "metrics": {"toy_facesim": {"n": n, "mean": facesim, "ci95": [facesim - 0.01, facesim + 0.01]},
                        "dynamic_degree": {"n": n, "mean": 0.5, "ci95": [0.4, 0.6]}}}


def test_table_and_plot(tmp_path):
    paths = {}
    for row, value in (("full", 0.71), ("consisid_like", 0.42), ("copy_paste", 0.93)):
        paths[row] = tmp_path / row / "summary.json"
        paths[row].parent.mkdir()
        paths[row].write_text(json.dumps(_summary(value)))
    out = write_table(paths, tmp_path / "ablation", budget={"max_steps": 10})
    table = json.loads((out / "ablation.json").read_text())
    assert table["rows"]["full"]["toy_facesim"]["mean"] == 0.71 and table["budget"]["max_steps"] == 10
    assert table["rows"]["full"]["toy_text_alignment"]["mean"] is None  # not measured: n/a, never made up
    md = (out / "ablation.md").read_text()
    assert "0.710 [0.700, 0.720]" in md and "ConsisID-like" in md and "n/a" in md and "max_steps 10" in md
    assert Image.open(out / "ablation.png").size[0] > 500
    with pytest.raises(UserError, match="no evaluation summary"):
        write_table({"full": tmp_path / "missing.json"}, tmp_path / "x")


def test_trained_model_folder_links_the_base_parts(tmp_path):
    base = tmp_path / "base"
    for name in ("tokenizer", "text_encoder", "vae", "scheduler", "face_encoder", "transformer"):
        (base / name).mkdir(parents=True)
    (base / "model_index.json").write_text("{}")
    trained = tmp_path / "runs" / "full" / "transformer_ema"
    trained.mkdir(parents=True)
    (trained / "config.json").write_text("{}")
    out = assemble_trained_model(base, trained, tmp_path / "trained" / "full")
    assert (out / "transformer").resolve() == trained.resolve()
    assert (out / "vae").resolve() == (base / "vae").resolve()
    decoder = tmp_path / "decoder"
    decoder.mkdir()
    (decoder / "config.json").write_text("{}")
    assemble_trained_model(base, trained, out, vae=decoder)  # again: links replaced, not an error
    assert (out / "vae").resolve() == decoder.resolve() and (out / "transformer").resolve() == trained.resolve()
    with pytest.raises(UserError, match="no trained transformer"):
        assemble_trained_model(base, tmp_path / "nothing", tmp_path / "trained" / "x")


def test_the_table_records_the_sampling_the_benches_ran_and_refuses_rows_sampled_differently(tmp_path):
    def job(row: str, guidance: float) -> None:
        folder = tmp_path / "bench" / row / "jobs"
        folder.mkdir(parents=True)
        (folder / "a.json").write_text(json.dumps({"settings": {"steps": 25, "guidance_scale": guidance, "seed": 42}}))

    job("full", 1.0)
    job("no_aml", 1.0)
    job("copy_paste", 9.0)  # a baseline: not sampled, not compared
    benches = {row: tmp_path / "bench" / row for row in ("full", "no_aml", "copy_paste")}
    assert sampling_budget(benches) == {"sampling_steps": 25, "guidance": 1.0, "sampling_seed": 42}
    job("taii_static", 4.0)
    benches = {row: tmp_path / "bench" / row for row in ("full", "no_aml", "taii_static")}
    with pytest.raises(UserError, match="different settings.*taii_static: steps 25, guidance_scale 4.0"):
        sampling_budget(benches)


def test_ablation_table_reads_the_benches_of_the_step_asked_for(tmp_path, capsys):
    from proteus_id.cli.main import main

    root = tmp_path / "root"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "full.yaml").write_text("max_steps: 4000\nbatch_size: 8\nseed: 42\n")

    def bench(name: str, facesim: float) -> None:
        folder = root / "bench" / name / "eval"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps(_summary(facesim)))

    bench("full_s2000", 0.21)
    bench("consisid_like_s2000", 0.19)
    bench("full_s4000", 0.24)  # the same run compared later: its own folder, never mixed with step 2000
    bench("copy_paste", 0.81)
    assert main(["toy", "ablation-table", "--root", str(root)]) == 0  # default: the schedule's end
    table = json.loads((root / "ablation-s4000" / "ablation.json").read_text())
    assert {r: v["toy_facesim"]["mean"] for r, v in table["rows"].items()} == {"full": 0.24, "copy_paste": 0.81}
    assert table["budget"]["compared_at_step"] == 4000 and table["budget"]["max_steps"] == 4000
    assert main(["toy", "ablation-table", "--root", str(root), "--eval-step", "2000"]) == 0
    table = json.loads((root / "ablation-s2000" / "ablation.json").read_text())
    assert list(table["rows"]) == ["full", "consisid_like", "copy_paste"]
    assert table["rows"]["consisid_like"]["toy_facesim"]["mean"] == 0.19
    capsys.readouterr()
    assert main(["toy", "ablation-table", "--root", str(root), "--eval-step", "3000"]) == 2
    assert "no finished benchmark of a row at step 3000" in capsys.readouterr().err


def test_paired_differences_match_videos_by_job_and_resolve_a_small_shift(tmp_path):
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.1, 0.9, size=60)  # videos differ a lot from each other; rows differ by 0.02 on each

    def per_video(row: str, values, jobs) -> None:
        folder = tmp_path / row
        folder.mkdir()
        lines = ["job,status,toy_facesim,flow_magnitude"]
        lines += [f"{j},ok,{v:.6f}," for j, v in zip(jobs, values)]
        lines.append("broken,failed,,")
        (folder / "per_video.csv").write_text("\n".join(lines) + "\n")
        (folder / "summary.json").write_text(json.dumps(_summary(float(np.mean(values)))))

    jobs = [f"j{k}" for k in range(60)]
    per_video("full", spread, jobs)
    per_video("consisid_like", (spread - 0.02)[::-1], jobs[::-1])  # the same videos in another order
    out = write_table({r: tmp_path / r / "summary.json" for r in ("full", "consisid_like")}, tmp_path / "ablation")
    paired = json.loads((out / "ablation_paired.json").read_text())["consisid_like"]
    assert paired["toy_facesim"]["n"] == 60
    assert paired["toy_facesim"]["mean"] == pytest.approx(-0.02, abs=1e-5)
    assert paired["toy_facesim"]["ci95"][1] < 0  # resolved, though the rows' own intervals overlap widely
    assert paired["flow_magnitude"]["mean"] is None  # not measured: n/a
    assert "Difference from the full model" in (out / "ablation.md").read_text()

    # differences that vary from video to video, paired in two processes (other string-hash seeds): the same interval
    import os
    import subprocess
    import sys

    (tmp_path / "full").rename(tmp_path / "other_full")
    per_video("full", spread + rng.normal(0, 0.05, size=60), jobs)
    code = ("import json, sys; from pathlib import Path; from proteus_id.toyworld.ablation import paired_differences; "
            "d = Path(sys.argv[1]); print(json.dumps(paired_differences({r: d / r / 'per_video.csv' "
            "for r in ('full', 'consisid_like')})))")
    seen = {subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(seen) == 1, seen
