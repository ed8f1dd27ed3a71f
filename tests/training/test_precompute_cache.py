"""precompute: a run killed half-way (SIGKILL) and rerun gives the same cache as one clean run; failures are counted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from training_helpers import PRECOMPUTE

from proteus_id.errors import UserError
from proteus_id.training.cache import FeatureCache, list_shards
from proteus_id.training.features import FeatureSettings
from proteus_id.training.precompute import run_precompute

LAUNCH = Path(__file__).resolve().parent / "launch_with_backend.py"


def _items(cache_dir: Path) -> dict[str, dict]:
    cache = FeatureCache(cache_dir)
    return {item.id: (cache.load(i), item.meta) for i, item in enumerate(cache.items)}


def test_clean_cache_contents(training_data):
    _, _, cache_dir = training_data
    cache = FeatureCache(cache_dir)
    assert len(cache) == 5 and cache.summary["failed"] == 0
    item = cache.load(0)
    assert item["latents_mean"].shape == (3, 4, 4, 4) and item["latents_std"].shape == (3, 4, 4, 4)
    assert item["image_latents_mean"].shape == (1, 4, 4, 4)
    assert item["identity_prompt_embeds"].shape == (32, 32) and item["id_cond"].shape == (1, 20)
    # the AML weight is 0 off the moving person and in (0.5, 1) on it (released formula), on the latent grid
    motion = item["motion_weight"]
    assert motion.shape == (3, 4, 4) and motion.max() > 0.5 and motion.min() == 0
    face = item["face_weight"]
    assert 0 < face.mean() < 0.5  # the face covers a small part of the frame
    assert cache.items[0].meta["person_mask"] == "person_masks"


def test_killed_run_resumes_to_the_same_cache(training_data, tmp_path):
    model, manifest, clean_dir = training_data
    out = tmp_path / "cache"
    args = [sys.executable, str(LAUNCH), "precompute", str(manifest), "--model", str(model), "--out", str(out),
            "--identity-backend", "tiny-test", "--dtype", "fp32", "--frame-stride", "1", "--height", "32", "--width", "32", "--shard-size", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and len(list_shards(out)) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list_shards(out))
    (out / ".shard-00-00099.safetensors.1234.tmp").write_bytes(b"half a shard")  # as if killed mid-write
    assert 0 < done_at_kill < 5, f"the kill should land half-way ({done_at_kill} of 5 done)"
    assert not (out / "index.json").exists()
    with pytest.raises(UserError, match="no index.json"):
        FeatureCache(out)

    summary = run_precompute(manifest, out, FeatureSettings(model=str(model), **PRECOMPUTE), shard_size=1, progress=False)
    assert summary.already == done_at_kill and summary.done == 5 - done_at_kill and summary.failed == 0
    resumed, clean = _items(out), _items(clean_dir)
    assert sorted(resumed) == sorted(clean)
    for item_id, (tensors, meta) in clean.items():
        assert meta == resumed[item_id][1]
        assert sorted(tensors) == sorted(resumed[item_id][0])
        for name, value in tensors.items():
            assert torch.equal(value, resumed[item_id][0][name]), f"{item_id}/{name} differs"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_failures_are_counted_and_settings_are_fixed(training_data, tmp_path):
    model, manifest, _ = training_data
    rows = [json.loads(line) for line in manifest.read_text().splitlines()][:3]
    rows[1]["caption"] = None
    rows[2]["start_frame"], rows[2]["end_frame"] = 6, 11  # 5 frames: too short for 9
    rows[2].pop("annotations")
    bad = manifest.parent / "partly_bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "cache"
    settings = FeatureSettings(model=str(model), **PRECOMPUTE)
    summary = run_precompute(bad, out, settings, shard_size=4, max_bad_fraction=1.0, progress=False)
    assert (summary.done, summary.failed, summary.skipped_untrainable) == (1, 1, 1)
    assert summary.reasons == {"not trainable: no caption or identity prompt": 1, "clip has N frames, training needs N": 1}
    assert [f["id"] for f in summary.failures] == ["clip_002"]
    index = json.loads((out / "index.json").read_text())
    assert [i["id"] for i in index["items"]] == ["clip_000"] and index["summary"]["failed"] == 1

    with pytest.raises(UserError, match="1 of 2 rows failed .more than --max-bad-fraction"):
        run_precompute(bad, tmp_path / "strict", settings, max_bad_fraction=0.1, progress=False)
    with pytest.raises(UserError, match="motion_weight: 'released' -> 'clip_normalized'"):
        run_precompute(bad, out, FeatureSettings(model=str(model), **{**PRECOMPUTE, "motion_weight": "clip_normalized"}),
                       progress=False)


def test_mask_fallbacks(training_data):
    """person masks -> person boxes -> a body box grown from the face boxes -> the whole frame; recorded per item."""
    from proteus_id.training.clips import load_clip
    from proteus_id.training.manifest import read_manifest

    _, manifest, _ = training_data
    row = read_manifest(manifest).rows[0]
    full = load_clip(row, 32, 32, 9, 1)
    assert (full.notes["person_mask"], full.notes["face_mask"]) == ("person_masks", "face_masks")
    row.annotations.pop("person_masks")
    boxes = load_clip(row, 32, 32, 9, 1)
    assert boxes.notes["person_mask"] == "person_boxes"
    # the box covers the person (up to edge pixels: the synthetic masks include their boundary) and not much more
    covered = (boxes.person_mask[full.person_mask > 0.5] > 0).mean()
    assert covered > 0.95 and boxes.person_mask.mean() < 1.5 * full.person_mask.mean(), covered
    row.annotations.pop("person_boxes")
    grown = load_clip(row, 32, 32, 9, 1)
    assert grown.notes["person_mask"] == "body_box_from_face"
    assert grown.person_mask.sum() > 2 * grown.face_mask.sum() and (grown.person_mask[grown.face_mask > 0.5] > 0).all()
    row.annotations.clear()
    bare = load_clip(row, 32, 32, 9, 1)
    assert bare.notes == {"person_mask": "whole_frame", "face_mask": "none"} and bare.person_mask.min() == 1
    assert bare.face_mask is None and bare.frames.shape == (9, 32, 32, 3)


def test_raft_runs_on_the_precompute_device(training_data, monkeypatch):
    """flow: raft gets the extractor's device unless flow_options names one (RAFT-large on the CPU beside a GPU VAE
    would dominate precompute)."""
    from proteus_id.motion import flow
    from proteus_id.training.features import FeatureExtractor
    from training_helpers import TinyTestBackend

    model, _, _ = training_data
    seen = []
    monkeypatch.setattr(flow, "get_flow_backend", lambda name, **options: seen.append((name, options)))
    settings = FeatureSettings(model=str(model), **{**PRECOMPUTE, "flow": "raft", "flow_options": {"weights": "raft.pth"}})
    FeatureExtractor(settings, "cpu", face_backend=TinyTestBackend())
    settings.flow_options = {"weights": "raft.pth", "device": "cuda:1"}
    FeatureExtractor(settings, "cpu", face_backend=TinyTestBackend())
    assert seen == [("raft", {"weights": "raft.pth", "device": "cpu"}), ("raft", {"weights": "raft.pth", "device": "cuda:1"})]
