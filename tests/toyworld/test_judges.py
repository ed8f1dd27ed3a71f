"""The world's judges: plumbing with untrained weights, the metric plug-in, and the shipped judges' accuracy on
held-out renders of evaluation identities (identities no judge was trained on)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from proteus_id.evaluation.metrics.base import MetricUnavailable, NotApplicable
from proteus_id.evaluation.video import VideoSample
from proteus_id.toyworld.judge_data import face_crops
from proteus_id.toyworld.judge_eval import JudgeSet, standardise
from proteus_id.toyworld.judges import ID_CROP, AttributeJudge, FaceLocator, IdentityJudge, MotionJudge
from proteus_id.toyworld.ship import JUDGES_DIR
from proteus_id.toyworld.traits import sample_identity
from proteus_id.toyworld.world import make_clip, render_clip, render_reference


@pytest.fixture(scope="module")
def random_judges(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("judges")
    torch.manual_seed(0)
    for name, net in {"locator": FaceLocator(), "identity": IdentityJudge(), "attributes": AttributeJudge(),
                      "motion": MotionJudge()}.items():
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / f"{name}.safetensors"))
    (folder / "judges.json").write_text(json.dumps({"format": 1}))
    return folder


def test_any_video_size_and_length_is_standardised():
    frames = np.random.default_rng(0).integers(0, 255, (9, 48, 80, 3), dtype=np.uint8)
    out = standardise(frames)
    assert out.shape == (17, 64, 64, 3)
    assert np.array_equal(out[0], standardise(frames[:1], None)[0])


def test_plumbing_with_untrained_judges(random_judges):
    judges = JudgeSet.load(random_judges)
    spec = make_clip(1000, 0)
    clip = render_clip(spec)
    sims = judges.identity_similarity(render_reference(spec.identity), clip.frames[::4])
    assert sims.shape == (5,) and ((sims >= 0) & (sims <= 1)).all()
    hits = judges.text_alignment(clip.frames, spec.caption)
    assert set(hits) >= {"garment", "clothes_colour", "background", "lighting", "motion", "text_alignment"}
    assert all(v in (0.0, 1.0) for k, v in hits.items() if k != "text_alignment")


def test_metric_plugin(random_judges, tmp_path):
    from proteus_id.evaluation.config import EvalConfig
    from proteus_id.evaluation.manifest import EvalRow
    from proteus_id.evaluation.metrics.base import registered_metrics
    from proteus_id.toyworld import judge_metrics

    assert {"toy_facesim", "toy_text"} <= set(registered_metrics())
    config = EvalConfig(extra={"toy_judges": str(random_judges)})
    spec = make_clip(1001, 0)
    clip = render_clip(spec)
    render_reference(spec.identity).save(tmp_path / "ref.png")
    video = VideoSample(tmp_path / "v.mp4", clip.frames, 8.0)
    facesim = judge_metrics.ToyFaceSim(config)
    value = facesim.compute(video, EvalRow(0, video.path, tmp_path / "ref.png", spec.caption))["toy_facesim"]
    assert 0.0 <= value <= 1.0
    with pytest.raises(NotApplicable):
        facesim.compute(video, EvalRow(0, video.path, None, spec.caption))
    text = judge_metrics.ToyText(config).compute(video, EvalRow(0, video.path, None, spec.caption))
    assert set(text) == {"toy_text_alignment", "toy_motion_hit", "toy_speed_hit", "toy_attribute_hit"}
    with pytest.raises(NotApplicable, match="none of the world's attributes"):
        judge_metrics.ToyText(config).compute(video, EvalRow(0, video.path, None, "a cat sleeps"))

def test_metric_without_judges_is_unavailable(tmp_path, monkeypatch):
    from proteus_id.evaluation.config import EvalConfig
    from proteus_id.toyworld import judge_metrics

    monkeypatch.setattr(judge_metrics, "SHIPPED_JUDGES", tmp_path / "absent")
    monkeypatch.delenv("PROTEUS_ID_TOY_JUDGES", raising=False)
    with pytest.raises(MetricUnavailable, match="train-judges"):
        judge_metrics.judges_folder(EvalConfig(extra={"toy_judges": str(tmp_path / "nothing")}))

shipped = pytest.mark.skipif(not (JUDGES_DIR / "judges.json").is_file(), reason="judges not shipped in this build")


@shipped
def test_shipped_judges_tell_held_out_identities_apart():
    """30 evaluation identities (never seen in training): gallery = a reference crop each; probes = located faces in
    4 frames of a clip of each. Measured when shipped: see judge_metrics.json (150 identities)."""
    judges = JudgeSet.load(JUDGES_DIR)
    numbers = list(range(30))
    gallery = np.stack([judges.embed_reference(render_reference(sample_identity(n), 31)) for n in numbers])
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    correct = 0
    for k, n in enumerate(numbers):
        frames = render_clip(make_clip(n, 8_500)).frames[[0, 5, 10, 16]]
        emb = judges.embed(face_crops(frames, judges.locate(frames), ID_CROP))
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        correct += int((emb @ gallery.T).argmax(1).tolist().count(k))
    accuracy = correct / (4 * len(numbers))
    assert accuracy >= 0.6, f"identity judge top-1 among 30 held-out identities: {accuracy:.2f} (chance 0.03)"


@shipped
def test_shipped_judges_read_motion_and_attributes_of_held_out_clips():
    judges = JudgeSet.load(JUDGES_DIR)
    motion_hits, attribute_hits = [], []
    for n in range(22):
        spec = make_clip(n, 8_600, motion=["walk left", "turn right", "move closer", "nod", "still", "talk"][n % 6],
                         speed="normal")
        hits = judges.text_alignment(render_clip(spec).frames, spec.caption)
        motion_hits.append(hits["motion"])
        attribute_hits += [hits[k] for k in ("garment", "clothes_colour", "background", "lighting")]
    assert np.mean(motion_hits) >= 0.7 and np.mean(attribute_hits) >= 0.7, (np.mean(motion_hits), np.mean(attribute_hits))
