"""Identity metrics on real photos: genuine vs impostor with dlib, the ArcFace ONNX and CurricularFace paths with
networks built in the test (the released weights are not available offline), and the protocol's details."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from proteus_id.evaluation.manifest import EvalRow
from proteus_id.evaluation.metrics.base import MetricUnavailable, MetricWeightsError, NotApplicable, positive_cosine
from proteus_id.evaluation.metrics.faces import ARCFACE_TEMPLATE_112, shared_face_analysis, similarity_transform
from proteus_id.evaluation.video import VideoSample, load_video, sample_indices


def _row(video: Path, image: Path | None, prompt: str = "a person") -> EvalRow:
    return EvalRow(index=0, video=video, image=image, prompt=prompt, raw={"video": str(video)})


def grace_hopper(tmp_path: Path) -> Path:
    import matplotlib
    from PIL import Image

    src = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out = tmp_path / "hopper.png"
    Image.open(src).convert("RGB").save(out)
    return out


def test_sample_indices_follow_the_protocol():
    assert sample_indices(49, 16).tolist() == np.linspace(0, 48, 16).round().astype(int).tolist()
    assert sample_indices(49, 16)[[0, -1]].tolist() == [0, 48]
    assert sample_indices(5, 16).tolist() == [0, 1, 2, 3, 4]  # short video: every frame once


def test_positive_cosine_clips_at_zero():
    ref = np.array([1.0, 0.0])
    sims = positive_cosine(ref, np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.2], [1.0, 1.0]]))
    assert sims == pytest.approx([1.0, 0.0, 0.0, np.sqrt(0.5)])


def test_similarity_transform_recovers_a_known_similarity():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE_112
    dst = src @ (scale * rot).T + shift
    m = similarity_transform(src, dst)
    assert m[:, :2] == pytest.approx(scale * rot, abs=1e-9)
    assert m[:, 2] == pytest.approx(shift, abs=1e-9)


def test_impostor_reference_scores_below_genuine(video_set, tmp_path):
    """The astronaut's video against Grace Hopper's photo: dlib says different people (distance > 0.6)."""
    from proteus_id.evaluation.metrics.identity import FaceSimDlib

    metric = FaceSimDlib(shared_face_analysis())
    genuine = metric.compute(load_video(video_set / "still.mp4", 4), _row(video_set / "still.mp4", video_set / "astronaut.png"))
    impostor = metric.compute(load_video(video_set / "still.mp4", 4), _row(video_set / "still.mp4", grace_hopper(tmp_path)))
    assert genuine["face_match_rate_dlib"] == 1.0 and impostor["face_match_rate_dlib"] == 0.0
    assert impostor["face_distance_dlib"] > 0.6 > genuine["face_distance_dlib"]
    assert impostor["facesim_dlib"] < genuine["facesim_dlib"] - 0.05


def test_reference_without_face_is_a_note_not_a_number(video_set):
    from proteus_id.evaluation.metrics.identity import FaceSimDlib

    metric = FaceSimDlib(shared_face_analysis())
    with pytest.raises(NotApplicable, match="no face found in the reference image coffee.png"):
        metric.compute(load_video(video_set / "still.mp4", 4), _row(video_set / "still.mp4", video_set / "coffee.png"))
    with pytest.raises(NotApplicable, match="no reference image"):
        metric.compute(load_video(video_set / "still.mp4", 4), _row(video_set / "still.mp4", None))


def _linear_onnx(path: Path, weight: np.ndarray, with_normalisation: bool = False) -> Path:
    """An 'ArcFace' ONNX: (N, 3, 112, 112) -> Flatten -> MatMul -> (N, D). Optionally with insightface's baked-in
    Sub/Mul normalisation at the start of the graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], [numpy_helper.from_array(weight.astype(np.float32), "W")]
    source = "input.1"
    if with_normalisation:
        inits += [numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
                  numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale")]
        nodes += [helper.make_node("Sub", ["input.1", "mean"], ["centred"]), helper.make_node("Mul", ["centred", "scale"], ["normed"])]
        source = "normed"
    nodes += [helper.make_node("Flatten", [source], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "W"], ["embedding"])]
    graph = helper.make_graph(
        nodes, "arcface_stand_in",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", weight.shape[1]])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("baked", [False, True])
def test_facesim_arc_runs_the_onnx_file_on_aligned_crops(video_set, tmp_path, baked):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from proteus_id.evaluation.metrics.identity import FaceSimArc

    weight = np.random.default_rng(0).normal(size=(3 * 112 * 112, 32)).astype(np.float32) / 100
    path = _linear_onnx(tmp_path / "arc.onnx", weight, baked)
    faces = shared_face_analysis()
    metric = FaceSimArc(faces, path, "cpu")
    assert (metric.model.mean, metric.model.std) == ((0.0, 1.0) if baked else (127.5, 127.5))
    video = load_video(video_set / "pan.mp4", 4)
    row = _row(video_set / "pan.mp4", video_set / "astronaut.png")
    out = metric.compute(video, row)
    # the same number by hand: aligned 112 crops, (x - 127.5) / 127.5, NCHW flatten, matrix product, max(0, cos)
    ref_image, ref_face = faces.reference(row.image)
    embed = lambda crop: ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1).reshape(-1) @ weight  # noqa: E731
    ref = embed(faces.arcface_crop(ref_image, ref_face))
    found = [f for f in faces.video_faces(video) if f is not None]
    sims = [max(0.0, float(ref @ (v := embed(faces.arcface_crop(video.frames[f.frame_index], f))) /
                          (np.linalg.norm(ref) * np.linalg.norm(v)))) for f in found]
    assert len(found) == 4
    assert out["facesim_arc"] == pytest.approx(np.mean(sims), abs=1e-4)
    assert out["facesim_arc_std"] == pytest.approx(np.std(sims), abs=1e-4)


def test_facesim_arc_without_weights_is_skipped_with_a_reason():
    from proteus_id.evaluation.config import EvalConfig
    from proteus_id.evaluation.metrics.identity import facesim_arc_factory, facesim_cur_factory

    with pytest.raises(MetricUnavailable, match="no ArcFace ONNX weights"):
        facesim_arc_factory(EvalConfig())
    with pytest.raises(MetricUnavailable, match="no CurricularFace weights"):
        facesim_cur_factory(EvalConfig())


SMALL_STAGES = ((16, 1), (16, 1), (32, 1), (32, 1))


def test_curricularface_loads_strictly_and_scores_the_still_video(video_set, tmp_path):
    import torch

    from proteus_id.evaluation.metrics.curricularface import IR101, load_curricularface
    from proteus_id.evaluation.metrics.identity import FaceSimCur

    torch.manual_seed(0)
    net = IR101(SMALL_STAGES)
    state = net.state_dict()
    assert "body.0.res_layer.1.weight" in state and "output_layer.3.weight" in state  # the released file's names
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "cur.bin")  # DataParallel prefix is fine
    loaded = load_curricularface(tmp_path / "cur.bin", stages=SMALL_STAGES)
    x = torch.rand(2, 3, 112, 112)
    assert torch.allclose(loaded(x), net.eval()(x))
    broken = dict(state)
    broken.pop("output_layer.3.weight")
    torch.save(broken, tmp_path / "broken.bin")
    with pytest.raises(MetricWeightsError, match="1 missing keys"):
        load_curricularface(tmp_path / "broken.bin", stages=SMALL_STAGES)
    (tmp_path / "junk.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(MetricWeightsError, match="not a readable"):
        load_curricularface(tmp_path / "junk.bin", stages=SMALL_STAGES)

    metric = FaceSimCur(shared_face_analysis(), tmp_path / "cur.bin", "cpu", stages=SMALL_STAGES)
    out = metric.compute(load_video(video_set / "still.mp4", 4), _row(video_set / "still.mp4", video_set / "astronaut.png"))
    assert 0.0 <= out["facesim_cur"] <= 1.0
    assert out["facesim_cur_std"] < 0.02  # the same face in every frame: the per-frame similarity barely moves


def test_face_detection_rate_counts_sampled_frames(video_set):
    from proteus_id.evaluation.metrics.identity import FaceDetectionRate

    frames = load_video(video_set / "still.mp4").frames
    mixed = np.concatenate([frames[:4], np.full_like(frames[:4], 128)])  # 4 face frames, 4 grey frames
    video = VideoSample(path=video_set / "mixed.mp4", frames=mixed, fps=8.0, sample_count=8)
    assert FaceDetectionRate(shared_face_analysis()).compute(video, _row(video.path, None)) == {"face_detection_rate": 0.5}
