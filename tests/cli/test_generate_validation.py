"""Every bad input to `proteus-id generate` ends with exit code 2, one line on stderr, no traceback, no output file,
and nothing heavy loaded first (the checks run before any weights)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from proteus_id.cli.main import main
from proteus_id.identity.features import IdentityFeatures

from model_folders import model_with_spec

SMALL = ["--frames", "9", "--height", "32", "--width", "32", "--steps", "1"]
DLIB_SPEC = {"kind": "dlib", "id_cond_dim": 128, "vit_dim": 0, "num_vit_states": 0}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("bad")
    files = {"zero_byte": folder / "empty.jpg", "text": folder / "notes.png", "corrupt": folder / "cut.jpg",
             "missing": folder / "nowhere.jpg", "wrong_features": folder / "wrong.safetensors",
             "text_features": folder / "features.safetensors"}
    files["zero_byte"].write_bytes(b"")
    files["text"].write_text("a text file with an image's name\n")
    files["corrupt"].write_bytes(photos["astronaut"].read_bytes()[:2000])
    import torch

    IdentityFeatures(torch.zeros(1, 1, 128), [], face_crop=Image.new("RGB", (8, 8)), kind="dlib").save(files["wrong_features"])
    files["text_features"].write_text("not safetensors")
    return files


def _case(name, tiny, features, photos, bad, tmp_path):
    """argv for each bad-input case (out is always tmp_path/out.mp4 unless the case is about --out)."""
    out = str(tmp_path / "out.mp4")
    base = ["generate", "--model", str(tiny), "--prompt", "A woman smiles", "--out", out, *SMALL]
    with_features = base + ["--face-features", str(features)]
    dlib_model = None
    if name in ("faceless_photo", "dlib_photo_ok_but_corrupt"):
        dlib_model = model_with_spec(tmp_path / "dlib_model", tiny, DLIB_SPEC)
    incomplete = model_with_spec(tmp_path / "incomplete", tiny, None, without=("vae",)) if name == "incomplete_model" else None
    damaged = _damaged_model(tmp_path / "damaged", tiny, name)
    cases = {
        "corrupt_image": base + ["--image", str(bad["corrupt"])],
        "zero_byte_image": base + ["--image", str(bad["zero_byte"])],
        "text_as_image": base + ["--image", str(bad["text"])],
        "missing_image": base + ["--image", str(bad["missing"])],
        "faceless_photo": ["generate", "--model", str(dlib_model), "--image", str(photos["coffee"]), "--prompt", "A man",
                           "--out", out, *SMALL],
        "missing_model": ["generate", "--model", str(tmp_path / "no_model"), "--face-features", str(features),
                          "--prompt", "A man", "--out", out],
        "incomplete_model": ["generate", "--model", str(incomplete), "--face-features", str(features), "--prompt", "A man",
                             "--out", out],
        "height_not_multiple": with_features + ["--height", "30"],
        "width_zero": with_features + ["--width", "0"],
        "frames_not_4k1": with_features + ["--frames", "6"],
        "frames_even_latents": with_features + ["--frames", "5"],
        "steps_zero": with_features + ["--steps", "0"],
        "negative_guidance": with_features + ["--guidance", "-1"],
        "guidance_interval_reversed": with_features + ["--guidance-interval", "800", "400"],
        "guidance_interval_one_value": with_features + ["--guidance-interval", "800"],
        "empty_prompt": ["generate", "--model", str(tiny), "--face-features", str(features), "--prompt", "   ", "--out", out],
        "no_prompt": ["generate", "--model", str(tiny), "--face-features", str(features), "--out", out],
        "empty_identity_prompt": with_features + ["--identity-prompt", ""],
        "negative_seed": with_features + ["--seed", "-3"],
        "out_not_mp4": ["generate", "--model", str(tiny), "--face-features", str(features), "--prompt", "A man",
                        "--out", str(tmp_path / "out.avi")],
        "out_is_folder": ["generate", "--model", str(tiny), "--face-features", str(features), "--prompt", "A man",
                          "--out", str(tmp_path / "folder.mp4")],
        "no_image": base,
        "features_do_not_fit": base + ["--face-features", str(bad["wrong_features"])],
        "features_not_safetensors": base + ["--face-features", str(bad["text_features"])],
        "released_backend_without_face_models": base + ["--image", str(photos["astronaut"])],
        "dlib_backend_for_released_model": base + ["--image", str(photos["astronaut"]), "--face-backend", "dlib"],
        "unknown_backend": base + ["--image", str(photos["astronaut"]), "--face-backend", "nope"],
        "batch_file_missing": ["generate", "--model", str(tiny), "--batch", str(tmp_path / "jobs.jsonl")],
        "batch_with_image": ["generate", "--model", str(tiny), "--batch", str(tmp_path / "jobs.jsonl"), "--image", "x.jpg"],
        "device_not_a_device": with_features + ["--device", "banana"],
        "steps_not_a_number": with_features + ["--steps", "many"],
        "frames_not_a_number": with_features + ["--frames", "9.5"],
        "height_missing_value": with_features + ["--height"],
        "unknown_flag": with_features + ["--bogus"],
        "transformer_without_weights": ["generate", "--model", str(damaged), "--face-features", str(features),
                                        "--prompt", "A man", "--out", out, *SMALL],
        "text_encoder_without_weights": ["generate", "--model", str(damaged), "--face-features", str(features),
                                         "--prompt", "A man", "--out", out, *SMALL],
        "truncated_weights": ["generate", "--model", str(damaged), "--face-features", str(features),
                              "--prompt", "A man", "--out", out, *SMALL],
        "broken_tokenizer": ["generate", "--model", str(damaged), "--face-features", str(features),
                             "--prompt", "A man", "--out", out, *SMALL],
        "learned_positions_other_size": ["generate", "--model", str(damaged), "--face-features", str(features),
                                         "--prompt", "A man", "--out", out, *SMALL],
        "cuda_without_gpu": with_features + ["--device", "cuda"],
    }
    if name == "out_is_folder":
        (tmp_path / "folder.mp4").mkdir()
    return cases[name]


_DAMAGE = {  # case -> (component copied and damaged, damage)
    "transformer_without_weights": ("transformer", "drop_weights"),
    "text_encoder_without_weights": ("text_encoder", "drop_weights"),
    "truncated_weights": ("transformer", "truncate"),
    "broken_tokenizer": ("tokenizer", "broken_json"),
    "learned_positions_other_size": ("transformer", "learned_positions"),
}


def _damaged_model(root: Path, tiny: Path, name: str) -> Path | None:
    """A model folder of links to the tiny model, with one component copied and damaged (a half-copied download)."""
    import json
    import shutil

    if name not in _DAMAGE:
        return None
    component, damage = _DAMAGE[name]
    model_with_spec(root, tiny, None, without=(component,))
    shutil.copytree(tiny / component, root / component)
    weights = sorted((root / component).glob("*.safetensors"))
    if damage == "drop_weights":
        for w in weights:
            w.unlink()
    elif damage == "truncate":
        weights[0].write_bytes(weights[0].read_bytes()[:3000])
    elif damage == "broken_json":
        (root / component / "tokenizer.json").write_text("{")
    elif damage == "learned_positions":
        config = json.loads((root / component / "config.json").read_text())
        (root / component / "config.json").write_text(json.dumps({**config, "use_learned_positional_embeddings": True}))
    return root


CASES = ["corrupt_image", "zero_byte_image", "text_as_image", "missing_image", "faceless_photo", "missing_model",
         "incomplete_model", "height_not_multiple", "width_zero", "frames_not_4k1", "frames_even_latents", "steps_zero",
         "negative_guidance", "guidance_interval_reversed", "guidance_interval_one_value", "empty_prompt", "no_prompt", "empty_identity_prompt", "negative_seed", "out_not_mp4",
         "out_is_folder", "no_image", "features_do_not_fit", "features_not_safetensors",
         "released_backend_without_face_models", "dlib_backend_for_released_model", "unknown_backend",
         "batch_file_missing", "batch_with_image", "device_not_a_device", "cuda_without_gpu", "steps_not_a_number",
         "frames_not_a_number", "height_missing_value", "transformer_without_weights", "text_encoder_without_weights",
         "truncated_weights", "broken_tokenizer", "learned_positions_other_size", "unknown_flag"]

EXPECTED = {  # a word or two each message must contain, so the line says what is wrong
    "corrupt_image": "not a readable image", "zero_byte_image": "empty file", "text_as_image": "not a readable image",
    "missing_image": "does not exist", "faceless_photo": "no face found in", "missing_model": "does not exist",
    "incomplete_model": "vae/", "height_not_multiple": "multiples of 16", "width_zero": "must be positive",
    "frames_not_4k1": "8k+1", "frames_even_latents": "even number of latent frames", "steps_zero": "at least 1",
    "negative_guidance": ">= 0", "guidance_interval_reversed": "--guidance-interval: must have 0 <= lo <= hi",
    "guidance_interval_one_value": "expected 2 arguments", "empty_prompt": "--prompt is missing or empty", "no_prompt": "--prompt is missing",
    "empty_identity_prompt": "identity prompt is empty", "negative_seed": "seed must be", "out_not_mp4": "must end in .mp4",
    "out_is_folder": "is a folder", "no_image": "--image is missing", "features_do_not_fit": "the model needs 20-d",
    "features_not_safetensors": "not a readable safetensors", "released_backend_without_face_models": "face_encoder",
    "dlib_backend_for_released_model": "'dlib' face backend gives 128-d id_cond",
    "unknown_backend": "unknown face backend", "batch_file_missing": "does not exist", "batch_with_image": "drop --image",
    "device_not_a_device": "not a torch device", "cuda_without_gpu": "no CUDA GPU",
    "steps_not_a_number": "invalid int value: 'many'", "frames_not_a_number": "invalid int value: '9.5'",
    "height_missing_value": "expected one argument", "transformer_without_weights": "transformer/: no weights inside",
    "text_encoder_without_weights": "text_encoder/: no weights inside", "truncated_weights": "is truncated",
    "broken_tokenizer": "tokenizer.json is not readable JSON", "learned_positions_other_size": "learned positional embeddings",
    "unknown_flag": "unrecognized arguments: --bogus",
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2_and_no_file(name, tiny_model_dir, features_file, photos, bad_files, tmp_path,
                                                  capsys, monkeypatch):
    if name in ("faceless_photo", "dlib_backend_for_released_model"):
        pytest.importorskip("dlib")
    if name == "cuda_without_gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    argv = _case(name, tiny_model_dir, features_file, photos, bad_files, tmp_path)
    loaded = []
    import proteus_id.cli.generate as generate

    monkeypatch.setattr(generate, "_load_pipeline", lambda *a, **k: loaded.append(1))  # must never be reached
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors (a word where a number goes) exit from the parser
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert EXPECTED[name] in lines[0], lines[0]
    assert "Traceback" not in err and not loaded
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out.mp4*"))


def test_no_default_model_in_this_build(monkeypatch, features_file, tmp_path, capsys):
    import proteus_id.defaults as defaults

    monkeypatch.setattr(defaults, "default_model_dir", lambda: None)
    code = main(["generate", "--face-features", str(features_file), "--prompt", "A man", "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "ships no default model" in err and len(err.strip().splitlines()) == 1


def test_real_process_prints_one_line_and_no_traceback(tiny_model_dir, bad_files, tmp_path):
    out = tmp_path / "out.mp4"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "proteus_id.cli.main", "generate", "--model", str(tiny_model_dir), "--image",
         str(bad_files["corrupt"]), "--prompt", "A woman smiles", "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2], timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {bad_files['corrupt']} is not a readable image (OSError)"]
    assert not out.exists()
