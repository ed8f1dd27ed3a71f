"""`proteus-id generate` end to end on a tiny random model: one job, and a batch with a bad job."""

from __future__ import annotations

import json

import pytest
import torch

from proteus_id.cli.main import main
from proteus_id.identity.backends import register_backend
from proteus_id.identity.features import IdentityFeatures, IdentitySpec
from proteus_id.pipeline.video import read_video

from model_folders import model_with_spec

SMALL = ["--frames", "9", "--height", "32", "--width", "32", "--steps", "1"]


def test_one_video_from_face_features(tiny_model_dir, features_file, tmp_path, capsys):
    out = tmp_path / "videos" / "one.mp4"
    prompt = "A young woman with brown hair smiles in the park at night while the camera slowly pans left and zooms closer"
    code = main(["generate", "--model", str(tiny_model_dir), "--face-features", str(features_file),
                 "--prompt", prompt, "--out", str(out), "--seed", "0", *SMALL])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    frames, fps = read_video(out)
    assert frames.shape == (9, 32, 32, 3) and fps == 8
    assert frames.std() > 1  # random weights, but a real decoded video, not a blank one
    assert "seed 0" in captured.out  # 0 is a seed like any other
    assert "identity prompt: A young woman with brown hair smiles in the park at night" in captured.err
    # the tiny transformer keeps 12 prompt tokens: the rest is dropped, and the warning quotes it
    assert 'Dropped: "' in captured.err and "zooms closer" in captured.err
    assert not list(out.parent.glob(".*tmp"))  # the atomic write left no temporary file


class TinyFromDlib:
    """A test backend: dlib's real face detection and embedding, projected to the tiny model's feature sizes."""

    kind = "test-tiny"
    produces = IdentitySpec("test-tiny", 20, 16, 2)

    def __init__(self):
        from proteus_id.identity.dlib_backend import DlibIdentityBackend

        self.dlib = DlibIdentityBackend()

    def extract(self, image, name=None):
        f = self.dlib.extract(image, name)
        g = torch.Generator().manual_seed(0)
        id_cond = (f.id_cond.view(1, 128) @ torch.randn(128, 20, generator=g)).view(1, 1, 20)
        vit = [torch.randn(1, 10, 16, generator=g) for _ in range(2)]
        return IdentityFeatures(id_cond, vit, face_crop=f.face_crop, keypoints=f.keypoints, kind=self.kind)


def test_batch_writes_good_jobs_and_reports_the_bad_one(tiny_model_dir, features_file, photos, tmp_path, capsys,
                                                        monkeypatch):
    pytest.importorskip("dlib")
    import proteus_id.cli.generate as generate

    monkeypatch.setattr(generate, "KEEP_FEATURES", 1)  # the big-batch path: check first, analyse again before each video
    register_backend("test-tiny", lambda face_dir, device: TinyFromDlib())
    model = model_with_spec(tmp_path / "model", tiny_model_dir, {"kind": "test-tiny", "id_cond_dim": 20, "vit_dim": 16,
                                                                 "num_vit_states": 2})
    jobs = tmp_path / "jobs.jsonl"
    lines = [
        {"image": str(photos["astronaut"]), "prompt": "A woman with short hair talks to the camera", "seed": 7, "out": "a.mp4"},
        {"image": str(photos["coffee"]), "prompt": "A man walks", "out": "coffee.mp4"},  # no face: a bad job
        {"face_features": str(features_file), "prompt": "A man walks in the city at night", "out": "out/c.mp4"},
    ]
    jobs.write_text("# three jobs\n" + "\n".join(json.dumps(line) for line in lines) + "\n")
    code = main(["generate", "--model", str(model), "--batch", str(jobs), *SMALL])
    captured = capsys.readouterr()
    assert code == 1  # one job failed
    assert (tmp_path / "a.mp4").is_file() and (tmp_path / "out" / "c.mp4").is_file()
    assert not (tmp_path / "coffee.mp4").exists()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "job 2 (line 3 of jobs.jsonl)" in errors[0] and "no face found" in errors[0]
    assert "batch: 2 written, 1 failed, 0 skipped" in captured.out
    assert "seed 7" in captured.out and "no seed given, using seed" in captured.err  # job 3 drew a seed and said it
    assert read_video(tmp_path / "a.mp4")[0].shape == (9, 32, 32, 3)

    # features of a photo saved by one run feed the next with --face-features
    saved = tmp_path / "feats" / "astronaut.safetensors"
    code = main(["generate", "--model", str(model), "--image", str(photos["astronaut"]), "--prompt", "A woman smiles",
                 "--out", str(tmp_path / "again.mp4"), "--save-features", str(saved), "--seed", "7", *SMALL])
    assert code == 0 and saved.is_file() and "saved face features" in capsys.readouterr().out
    again = IdentityFeatures.load(saved)
    assert again.kind == "test-tiny" and again.id_cond.shape == (1, 1, 20) and again.face_crop.size == (512, 512)

    # resuming: finished outputs are skipped, the model is not even loaded for nothing
    code = main(["generate", "--model", str(model), "--batch", str(jobs), "--skip-existing", *SMALL])
    captured = capsys.readouterr()
    assert code == 1 and "batch: 0 written, 1 failed, 2 skipped" in captured.out
    assert "loading" not in captured.err


def test_a_recommended_guidance_interval_is_used_unless_one_is_given():
    from types import SimpleNamespace

    from proteus_id.cli.generate_jobs import fill_generation_defaults

    folder = SimpleNamespace(model_index={"generation_defaults": {"guidance": 3.0, "guidance_interval": [700, 1000]}})
    left_out = SimpleNamespace(steps=None, guidance=None, fps=None, guidance_interval=None)
    fill_generation_defaults(left_out, folder)
    assert (left_out.steps, left_out.guidance, left_out.fps, left_out.guidance_interval) == (50, 3.0, 8, [700.0, 1000.0])
    given = SimpleNamespace(steps=None, guidance=None, fps=None, guidance_interval=[0.0, 1000.0])
    fill_generation_defaults(given, folder)
    assert given.guidance_interval == [0.0, 1000.0]
    released = SimpleNamespace(steps=None, guidance=None, fps=None, guidance_interval=None)
    fill_generation_defaults(released, SimpleNamespace(model_index={}))
    assert released.guidance_interval is None  # as released: guidance at every step


def test_settings_left_out_come_from_the_model_folder(tiny_model_dir, features_file, tmp_path, capsys, monkeypatch):
    """A model's model_index.json may recommend steps/guidance/fps/guidance interval; given flags still win."""
    from proteus_id.pipeline.pipeline import ProteusIDPipeline

    model = model_with_spec(tmp_path / "model", tiny_model_dir, spec=None)
    index = json.loads((model / "model_index.json").read_text()) if (model / "model_index.json").is_file() else {}
    index["generation_defaults"] = {"steps": 1, "guidance": 2.0, "guidance_interval": [500, 1000], "fps": 5,
                                    "identity_guidance": 1.5}
    (model / "model_index.json").write_text(json.dumps(index))
    calls = []
    real_call = ProteusIDPipeline.__call__
    monkeypatch.setattr(ProteusIDPipeline, "__call__", lambda self, **kw: calls.append(kw) or real_call(self, **kw))
    common = ["generate", "--model", str(model), "--face-features", str(features_file), "--prompt", "a person waves",
              "--seed", "1", "--frames", "9", "--height", "32", "--width", "32"]
    assert main([*common, "--out", str(tmp_path / "a.mp4")]) == 0, capsys.readouterr().err
    assert read_video(tmp_path / "a.mp4")[1] == 5
    assert calls[-1]["guidance_interval"] == [500.0, 1000.0] and calls[-1]["num_inference_steps"] == 1
    assert (calls[-1]["identity_guidance_scale"], calls[-1]["identity_guidance_negative"]) == (1.5, "face_latent")
    assert main([*common, "--fps", "12", "--guidance-interval", "0", "1000", "--out", str(tmp_path / "b.mp4")]) == 0
    assert read_video(tmp_path / "b.mp4")[1] == 12
    assert calls[-1]["guidance_interval"] == [0.0, 1000.0] and calls[-1]["guidance_scale"] == 2.0
    assert main([*common, "--identity-guidance", "0", "--out", str(tmp_path / "c.mp4")]) == 0
    assert calls[-1]["identity_guidance_scale"] == 0.0
    assert main([*common, "--identity-guidance", "-1", "--out", str(tmp_path / "d.mp4")]) == 2
    assert "--identity-guidance must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "d.mp4").exists()


def test_a_job_negative_prompt_replaces_the_command_one(tmp_path):
    from types import SimpleNamespace

    import numpy as np

    import proteus_id.cli.generate as generate
    from proteus_id.cli.generate_jobs import read_jobs

    jobs = tmp_path / "jobs.jsonl"
    lines = [{"face_features": "f.safetensors", "prompt": "A man turns to the left", "negative_prompt": "A man turns to the right",
              "seed": 1, "out": "a.mp4"},
             {"face_features": "f.safetensors", "prompt": "A man waves", "seed": 1, "out": "b.mp4"},
             {"face_features": "f.safetensors", "prompt": "A man waves", "negative_prompt": 3, "out": "c.mp4"}]
    jobs.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    read, bad = read_jobs(jobs)
    assert [j.negative_prompt for j in read] == ["A man turns to the right", None]
    assert bad == [("job 3 (line 3 of jobs.jsonl)", "negative_prompt must be text")]

    seen = []
    frames = np.zeros((9, 32, 32, 3), dtype=np.float32)
    pipe = lambda **kwargs: seen.append(kwargs["negative_prompt"]) or SimpleNamespace(frames=[frames])
    args = SimpleNamespace(negative_prompt="blurry", steps=1, guidance=3.0, guidance_interval=None, fps=8, motion_contrast="off",
                           identity_guidance=0.0, identity_guidance_negative="face_latent")
    features = SimpleNamespace(face_crop=None, id_cond=None, id_vit_hidden=None, keypoints=None)
    for job in read:
        prepared = generate._Prepared(job, job.prompt, "a man", 1, tmp_path / job.out, None)
        generate._generate_one(pipe, prepared, features, 32, 32, 9, args)
    assert seen == ["A man turns to the right", "blurry"]


def test_a_recommended_motion_contrast_writes_the_negative_unless_one_is_given():
    from types import SimpleNamespace

    from proteus_id.cli.generate_jobs import fill_generation_defaults, negative_prompt_for
    from proteus_id.errors import UserError

    folder = SimpleNamespace(model_index={"generation_defaults": {"guidance": 5.0, "motion_contrast": "opposite"}})
    left_out = SimpleNamespace(steps=None, guidance=None, fps=None, guidance_interval=None, motion_contrast=None)
    fill_generation_defaults(left_out, folder)
    assert left_out.motion_contrast == "opposite"
    released = SimpleNamespace(steps=None, guidance=None, fps=None, guidance_interval=None, motion_contrast=None)
    fill_generation_defaults(released, SimpleNamespace(model_index={}))
    assert released.motion_contrast == "off"
    with pytest.raises(UserError, match="motion contrast must be one of off, still, opposite"):
        fill_generation_defaults(SimpleNamespace(steps=None, guidance=None, fps=None, guidance_interval=None,
                                                 motion_contrast=None),
                                 SimpleNamespace(model_index={"generation_defaults": {"motion_contrast": "mirror"}}))

    prompt = "A man in a red hoodie slowly turns his head to the left in a park, in dim light."
    assert negative_prompt_for(prompt, "", "opposite") == \
        "A man in a red hoodie slowly turns his head to the right in a park, in dim light."
    assert negative_prompt_for(prompt, "", "still") == \
        "A man in a red hoodie holds still, looking at the camera in a park, in dim light."
    assert negative_prompt_for(prompt, "blurry", "opposite") == "blurry"  # a negative the user gave wins
    assert negative_prompt_for(prompt, "", "off") == ""
    other = "An astronaut floats past the window"  # no motion of the world: its own negative, so guidance is a no-op
    assert negative_prompt_for(other, "", "opposite") == other
