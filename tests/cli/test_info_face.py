"""`proteus-id info`: the face-backend line, where the identity spec comes from, and what is missing."""

from __future__ import annotations

import pytest

from proteus_id.cli.main import main

from model_folders import model_with_spec


def test_info_reports_components_backend_and_spec_source(tiny_model_dir, capsys):
    code = main(["info", "--model", str(tiny_model_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert "transformer/" in out and "parameters" in out and "--offload sequential" in out
    backend = next(line for line in out.splitlines() if line.startswith("face backend:"))
    assert "released (id_cond 20-d, 2 x 16-d ViT states): NOT available" in backend and "face_encoder" in backend
    assert "from transformer/config.json" in out


def test_info_with_a_dlib_spec_says_available(tiny_model_dir, tmp_path, capsys):
    pytest.importorskip("dlib")
    model = model_with_spec(tmp_path / "m", tiny_model_dir, {"kind": "dlib", "id_cond_dim": 128, "vit_dim": 0,
                                                              "num_vit_states": 0})
    assert main(["info", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "face backend: dlib (id_cond 128-d, no ViT states): available" in out
    assert "from face_encoder/identity_spec.json" in out


def test_info_on_an_incomplete_folder_names_what_is_missing(tiny_model_dir, tmp_path, capsys):
    model = model_with_spec(tmp_path / "m", tiny_model_dir, None, without=("vae", "scheduler"))
    code = main(["info", "--model", str(model)])
    captured = capsys.readouterr()
    assert code == 2
    assert "vae/              MISSING: the CogVideoX 3D VAE" in captured.out
    assert "scheduler/        MISSING" in captured.out
    assert captured.err.count("\n") == 1 and "cannot generate until the missing parts above are added" in captured.err


def test_info_on_truncated_weights_says_so_instead_of_crashing(tiny_model_dir, tmp_path, capsys):
    import shutil

    model = model_with_spec(tmp_path / "m", tiny_model_dir, None, without=("transformer",))
    shutil.copytree(tiny_model_dir / "transformer", model / "transformer")
    weights = model / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:3000])  # a half-finished download
    code = main(["info", "--model", str(model)])
    captured = capsys.readouterr()
    assert code == 2
    assert "transformer/      UNREADABLE" in captured.out and "truncated" in captured.out
    assert "fuse_token_former" in captured.out  # the counts still come from the config
    assert captured.err.count("\n") == 1
