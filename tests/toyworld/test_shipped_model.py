"""The shipped toy model: loads from the package, its face backend reads the example faces, 2-step generation runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from proteus_id.defaults import default_model_dir
from proteus_id.toyworld.ship import FACES_DIR, MAX_MODEL_MB, folder_megabytes

MODEL = default_model_dir()
pytestmark = pytest.mark.skipif(MODEL is None, reason="this build ships no default model")


@pytest.fixture(scope="module")
def pipe():
    from proteus_id.pipeline import ProteusIDPipeline

    return ProteusIDPipeline.from_pretrained(MODEL)


def test_size_budget_and_layout():
    assert folder_megabytes(MODEL) <= MAX_MODEL_MB
    for name in ("tokenizer", "text_encoder", "vae", "scheduler", "transformer", "face_encoder"):
        assert (MODEL / name).is_dir()
    assert json.loads((MODEL / "face_encoder" / "identity_spec.json").read_text())["kind"] == "toyworld"


def test_two_step_generation_from_an_example_face(pipe):
    from proteus_id.identity.backends import backend_for_model

    face = json.loads((FACES_DIR / "faces.json").read_text())["faces"][0]
    features = backend_for_model(MODEL).extract(FACES_DIR / face["image"])
    kwargs = dict(image=features.face_crop, prompt=face["prompt"], identity_prompt=face["identity_prompt"],
                  id_cond=features.id_cond, id_vit_hidden=features.id_vit_hidden, num_inference_steps=2,
                  output_type="np")
    a = pipe(**kwargs, seed=3).frames
    b = pipe(**kwargs, seed=3).frames
    assert a.shape == (1, 17, 64, 64, 3) and np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert a.std() > 0.02  # not a constant image


def test_demo_writes_a_video_and_a_preview(tmp_path, capsys):
    from PIL import Image

    from proteus_id.cli.main import main
    from proteus_id.pipeline.video import read_video

    out = tmp_path / "demo.mp4"
    assert main(["demo", "--out", str(out), "--steps", "2", "--display-scale", "2"]) == 0, capsys.readouterr().err
    frames, fps = read_video(out)
    assert frames.shape == (17, 128, 128, 3) and fps == 8
    preview = Image.open(out.with_suffix(".png"))
    assert preview.width > 6 * 128 and preview.height >= 128  # reference + 6 frames side by side
    printed = capsys.readouterr().out
    assert "wrote" in printed
    # the sampling the model card recommends is what the demo used (only --steps was given)
    recommended = json.loads((MODEL / "model_index.json").read_text()).get("generation_defaults", {})
    assert f"guidance {recommended.get('guidance', 6.0):g}" in printed
    if recommended.get("guidance_interval"):
        lo, hi = recommended["guidance_interval"]
        assert f"at timesteps {lo:g}-{hi:g}" in printed
    if recommended.get("motion_contrast", "off") != "off" and recommended.get("guidance", 6.0) > 1:
        # the negative is the example's own prompt with its motion mirrored (or held still)
        from proteus_id.toyworld.captions import contrast_prompt

        faces = json.loads((MODEL.parent / "toyworld-faces" / "faces.json").read_text())["faces"]
        negative = contrast_prompt(faces[0]["prompt"], recommended["motion_contrast"])
        assert negative != faces[0]["prompt"] and f"motion contrast): {negative}" in printed
