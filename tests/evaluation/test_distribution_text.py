"""The set-level face FID (math, the Inception network's loading, reduction over rows) and CLIPScore with a tiny
CLIP folder built in the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from proteus_id.evaluation.manifest import EvalRow
from proteus_id.evaluation.metrics.base import MetricWeightsError
from proteus_id.evaluation.metrics.fid import frechet_distance
from proteus_id.evaluation.video import load_video


def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-6)
    # independent 1-d Gaussians: FID = (m1 - m2)^2 + (s1 - s2)^2
    x, y = rng.normal(0.0, 1.0, (20000, 1)), rng.normal(3.0, 2.0, (20000, 1))
    expected = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], a)


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 3 real faces in 8 dimensions: a low-rank covariance
def test_face_fid_reduces_over_rows_with_one_real_face_per_reference():
    from proteus_id.evaluation.metrics.fid import FaceFID

    rng = np.random.default_rng(1)
    ref = {name: rng.normal(size=(1, 8)) for name in ("a.png", "b.png", "c.png")}
    gen = [rng.normal(size=(5, 8)) + 0.5 for _ in range(4)]
    ids = ["a.png", "a.png", "b.png", "c.png"]  # a.png is the reference of two videos: counted once
    collected = [{"reference": ref[i], "generated": g, "reference_id": np.frombuffer(i.encode(), np.uint8)} for i, g in zip(ids, gen)]
    metric = FaceFID.__new__(FaceFID)  # reduce() needs no network
    out = metric.reduce(collected + [None])
    assert out["face_fid_real_faces"] == 3 and out["face_fid_generated_faces"] == 20
    assert out["face_fid"] == pytest.approx(frechet_distance(np.concatenate(list(ref.values())), np.concatenate(gen)))
    few = metric.reduce(collected[:1])
    assert "face_fid" not in few and "at least 2 faces" in few["face_fid_note"]


def test_inception_weights_load_strictly_and_pick_the_variant(tmp_path):
    import torch

    from proteus_id.evaluation.metrics.inception import InceptionV3Features, inception_features, load_inception

    torch.manual_seed(0)
    fid_net = InceptionV3Features(fid_variant=True)
    torch.save(fid_net.state_dict(), tmp_path / "pt_inception-2015-12-05-test.pth")
    fid = load_inception(tmp_path / "pt_inception-2015-12-05-test.pth")
    assert fid.fid_variant and fid.Mixed_7c.pool == "max" and fid.Mixed_7b.pool == "avg_no_pad" and fid.Mixed_5b.fid
    loaded, saved = fid.state_dict(), fid_net.state_dict()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    crop = (np.random.default_rng(0).uniform(0, 255, (150, 150, 3))).astype(np.uint8)
    feats = inception_features(fid, [crop])
    assert feats.shape == (1, 2048) and np.isfinite(feats).all() and (feats >= 0).all()  # pooled ReLU outputs

    with torch.device("meta"):  # torchvision's layout (1000 classes, auxiliary head): only the key layout matters
        tv_layout = InceptionV3Features(fid_variant=False, aux=True)
    torch.save({k: torch.zeros(v.shape) for k, v in tv_layout.state_dict().items()}, tmp_path / "inception_v3_google-test.pth")
    tv = load_inception(tmp_path / "inception_v3_google-test.pth")
    assert not tv.fid_variant and hasattr(tv, "AuxLogits") and tv.Mixed_7c.pool == "avg"

    broken = dict(saved)
    broken.pop("Mixed_7c.branch_pool.conv.weight")
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(MetricWeightsError, match="does not fit InceptionV3"):
        load_inception(tmp_path / "broken.pth")


def _tiny_clip_folder(path: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from proteus_id.testing import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer()
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, eos_token_id=1, pad_token_id=0),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    import torch

    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_clipscore_is_100_times_the_cosine_of_clip_embeddings(video_set, tmp_path):
    import torch

    from proteus_id.evaluation.config import EvalConfig
    from proteus_id.evaluation.metrics.clip_score import clipscore_factory

    folder = _tiny_clip_folder(tmp_path / "clip")
    metric = clipscore_factory(EvalConfig(clip=folder))
    video = load_video(video_set / "pan.mp4", 4)
    prompt = "a woman in a white suit smiles"
    row = EvalRow(index=0, video=video.path, image=None, prompt=prompt)
    score = metric.compute(video, row)["clipscore"]
    # the same number through CLIPModel's forward: logits_per_image = exp(logit_scale) * cosine
    model = metric.model
    inputs = metric.tokenizer([prompt], return_tensors="pt")
    pixels = metric.processor(images=list(video.sampled_frames), return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                       pixel_values=pixels["pixel_values"]).logits_per_image
    expected = float((logits / model.logit_scale.exp()).mean().detach() * 100.0)
    assert score == pytest.approx(expected, abs=1e-3)
    assert -100.0 <= score <= 100.0
