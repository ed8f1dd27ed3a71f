"""The suite format and our prompt set; `proteus-id bench` end to end on a tiny model folder with a test face
backend (tiny features in, a real video out, evaluated), and its resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from proteus_id.evaluation.suite import SuiteError, builtin_prompts, load_suite
from proteus_id.evaluation.suite.schema import Identity, Suite


def test_builtin_prompts_cover_the_categories_with_a_person_slot():
    prompts = builtin_prompts()
    cats = {p.category for p in prompts}
    assert cats == {"action", "scene", "camera", "appearance"}
    assert len(prompts) >= 60 and len({p.id for p in prompts}) == len(prompts)
    assert all("{person}" in p.text for p in prompts)


def test_150_identities_get_four_prompts_one_per_category_all_prompts_used():
    idents = [Identity(f"id{k:03d}", Path("x.png"), "female", "chef", "r", "s", "l", "a woman", "a woman") for k in range(150)]
    suite = Suite(None, "t", idents, builtin_prompts(), 4)
    jobs = suite.jobs()
    assert len(jobs) == 600
    for k in range(150):
        mine = [j for j in jobs if j.identity.id == f"id{k:03d}"]
        assert sorted(j.prompt.category for j in mine) == ["action", "appearance", "camera", "scene"]
    uses = {}
    for j in jobs:
        uses[j.prompt.id] = uses.get(j.prompt.id, 0) + 1
    assert len(uses) == len(builtin_prompts())  # every prompt is used
    assert jobs[0].text.startswith("A woman ") and "{person}" not in jobs[0].text
    assert len({j.id for j in jobs}) == 600


def test_example_suite_loads_and_bad_lines_name_the_line(tmp_path):
    from importlib import resources

    example = resources.files("proteus_id.evaluation.suite").joinpath("example_suite.jsonl")
    suite = load_suite(Path(str(example)))
    assert [i.id for i in suite.identities] == ["id001", "id002"]
    assert suite.identities[1].person == "a man"  # from gender when no person phrase is given
    assert len(suite.jobs()) == 8
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "suite", "proteus_bench": 1}\n'
                   '{"type": "identity", "id": "a", "image": "a.png", "gender": "f", "profession": "p", "region": "r", "source": "s"}\n')
    with pytest.raises(SuiteError, match=r"bad.jsonl:2: identity line lacks licence"):
        load_suite(bad)
    bad.write_text('{"type": "prompt", "id": "p", "category": "action", "text": "someone walks"}\n')
    with pytest.raises(SuiteError, match=r"bad.jsonl:1: prompt 'p' has no \{person\} slot"):
        load_suite(bad)



def test_shipped_schema_accepts_the_shipped_suite_files_and_requires_what_the_loader_requires():
    """schema_v1.json is the published format: it must agree with the loader and with the files we ship."""
    jsonschema = pytest.importorskip("jsonschema")
    from importlib import resources

    from proteus_id.evaluation.suite.schema import IDENTITY_REQUIRED, PROMPT_REQUIRED

    folder = resources.files("proteus_id.evaluation.suite")
    schema = json.loads(folder.joinpath("schema_v1.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for name in ("prompts_v1.jsonl", "example_suite.jsonl"):
        for line in folder.joinpath(name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                assert validator.is_valid(json.loads(line)), (name, line[:80])
    required = {branch["properties"]["type"]["const"]: set(branch["required"]) - {"type"} for branch in schema["oneOf"]}
    assert required["identity"] == set(IDENTITY_REQUIRED) and required["prompt"] == set(PROMPT_REQUIRED)


class _TinyFaceBackend:
    """Registered as a face backend for the test: features shaped for the tiny model, the photo as the face crop."""

    kind = "eval-test-tiny"

    def extract(self, image, name=None):
        from PIL import Image

        from proteus_id.identity.features import IdentityFeatures
        from proteus_id.identity.image_io import load_image
        from proteus_id.testing import tiny_identity_features

        pixels = load_image(image)
        seed = int(pixels.mean() * 1000) % 1000  # different photos -> different features
        id_cond, vit = tiny_identity_features(seed=seed)
        return IdentityFeatures(id_cond, vit, face_crop=Image.fromarray(pixels).resize((64, 64)), kind=self.kind)


@pytest.fixture()
def two_entry_suite(tmp_path):
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(data.chelsea()).save(tmp_path / "chelsea.png")
    lines = [
        {"type": "suite", "proteus_bench": 1, "name": "two"},
        {"type": "identity", "id": "astro", "image": "astronaut.png", "gender": "female", "profession": "astronaut",
         "region": "North America", "source": "skimage.data (NASA, public domain)", "licence": "public domain",
         "identity_prompt": "a woman with short brown hair"},
        {"type": "identity", "id": "cat", "image": "chelsea.png", "gender": "other", "profession": "cat",
         "region": "n/a", "source": "skimage.data", "licence": "CC0"},
        {"type": "prompt", "id": "walk", "category": "action", "text": "{person} walks in the park"},
        {"type": "job", "identity": "astro", "prompt": "walk"},
        {"type": "job", "identity": "cat", "prompt": "walk"},
    ]
    path = tmp_path / "suite.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_bench_generates_evaluates_and_resumes(tiny_model_dir, two_entry_suite, tmp_path):
    from proteus_id.evaluation.bench import GenerationSettings, run_bench
    from proteus_id.evaluation.config import EvalConfig
    from proteus_id.identity.backends import _REGISTRY, register_backend

    register_backend("eval-test-tiny", lambda face_dir, device: _TinyFaceBackend())
    try:
        settings = GenerationSettings(steps=2, guidance_scale=1.0, seed=0, height=32, width=32, face_backend="eval-test-tiny")
        config = EvalConfig(sample_frames=4, metrics=["face_detection", "motion"])
        run = tmp_path / "run"
        result = run_bench(tiny_model_dir, two_entry_suite, run, settings, config, progress=False)

        videos = sorted((run / "videos").glob("*.mp4"))
        assert [v.name for v in videos] == ["astro__walk.mp4", "cat__walk.mp4"]
        from proteus_id.pipeline.video import read_video

        frames, fps = read_video(videos[0])
        assert frames.shape == (9, 32, 32, 3) and fps == 8.0  # the asked size, the tiny model's frame count
        rows = [json.loads(line) for line in (run / "manifest.jsonl").read_text().splitlines()]
        assert [r["prompt"] for r in rows] == ["A woman walks in the park", "A person walks in the park"]
        assert rows[0]["image"] == "../astronaut.png" and rows[0]["region"] == "North America"
        assert result.summary["counts"]["ok"] == 2
        with open(run / "eval" / "per_video.csv", newline="") as f:
            table = list(csv.DictReader(f))
        assert [r["identity"] for r in table] == ["astro", "cat"] and all(r["status"] == "ok" for r in table)
        assert all(r["dynamic_degree"] in ("0", "1") for r in table)
        assert json.loads((run / "jobs" / "astro__walk.json").read_text())["status"] == "ok"

        stamps = [v.stat().st_mtime_ns for v in videos]
        again = run_bench(tiny_model_dir, two_entry_suite, run, settings, config, progress=False)
        assert [v.stat().st_mtime_ns for v in videos] == stamps  # finished videos are kept, not generated again
        assert again.summary["counts"]["evaluated_this_run"] == 0
        assert np.array_equal(read_video(videos[0])[0], frames)

        # the same RUN with other settings or other weights (same path) would mix videos: refused
        from dataclasses import replace

        from proteus_id.errors import UserError

        with pytest.raises(UserError, match=r"\(guidance_scale 1.0 -> 3.0\); give a new --out"):
            run_bench(tiny_model_dir, two_entry_suite, run, replace(settings, guidance_scale=3.0), config, progress=False)
        with pytest.raises(UserError, match=r"\(guidance_interval None -> \[800.0, 1000.0\]\)"):
            run_bench(tiny_model_dir, two_entry_suite, run, replace(settings, guidance_interval=[800.0, 1000.0]), config,
                      progress=False)
        with pytest.raises(UserError, match=r"\(identity_guidance_scale 0.0 -> 2.0\)"):
            run_bench(tiny_model_dir, two_entry_suite, run, replace(settings, identity_guidance_scale=2.0), config,
                      progress=False)
        # a run recorded before a setting existed holds that setting's default: it resumes
        record = json.loads((run / "run.json").read_text())
        del record["settings"]["identity_guidance_scale"], record["settings"]["identity_guidance_negative"]
        (run / "run.json").write_text(json.dumps(record))
        run_bench(tiny_model_dir, two_entry_suite, run, settings, config, progress=False)
        assert [v.stat().st_mtime_ns for v in videos] == stamps
        import shutil

        from safetensors.torch import load_file, save_file

        other = shutil.copytree(tiny_model_dir, tmp_path / "moved_model")
        run_bench(other, two_entry_suite, run, settings, config, progress=False)  # a copy is the same model
        weights = next((other / "transformer").glob("*.safetensors"))
        tensors = load_file(weights)
        name = sorted(tensors)[0]
        tensors[name] = tensors[name] + 1.0
        save_file(tensors, weights)
        with pytest.raises(UserError, match="model weights"):
            run_bench(other, two_entry_suite, run, settings, config, progress=False)

        # folders that link their parts (as `toy` assembles them): the linked weights count, not the links
        from proteus_id.evaluation.bench import model_identity

        def linked(name: str, transformer: Path) -> Path:
            folder = tmp_path / name
            folder.mkdir()
            for part in tiny_model_dir.iterdir():
                (folder / part.name).symlink_to(transformer if part.name == "transformer" else part)
            return folder

        assert model_identity(linked("linked_same", tiny_model_dir / "transformer")) == model_identity(tiny_model_dir)
        assert model_identity(linked("linked_other", other / "transformer")) != model_identity(tiny_model_dir)
        (run / "run.json").write_text("{not json")
        with pytest.raises(UserError, match="run.json is unreadable"):
            run_bench(tiny_model_dir, two_entry_suite, run, settings, config, progress=False)
        assert [v.stat().st_mtime_ns for v in videos] == stamps
    finally:
        _REGISTRY.pop("eval-test-tiny", None)


def test_bench_refuses_a_suite_whose_photos_are_missing(tiny_model_dir, tmp_path):
    from proteus_id.errors import UserError
    from proteus_id.evaluation.bench import run_bench

    suite = tmp_path / "s.jsonl"
    suite.write_text(json.dumps({"type": "identity", "id": "x", "image": "nowhere.png", "gender": "f", "profession": "p",
                                 "region": "r", "source": "s", "licence": "l"}) + "\n"
                     + json.dumps({"type": "prompt", "id": "p", "category": "c", "text": "{person} waves"}) + "\n")
    with pytest.raises(UserError, match="1 identity photos do not exist: x"):
        run_bench(tiny_model_dir, suite, tmp_path / "run")


def test_a_prompt_negative_reaches_the_pipeline_with_the_person_filled_in(tmp_path):
    from types import SimpleNamespace

    from proteus_id.evaluation.bench import GenerationSettings, Generator, manifest_rows

    lines = [{"type": "identity", "id": "a", "image": "a.png", "gender": "female", "profession": "p", "region": "r",
              "source": "s", "licence": "l"},
             {"type": "prompt", "id": "left", "category": "action", "text": "{person} turns to the left",
              "negative_prompt": "{person} turns to the right"},
             {"type": "prompt", "id": "plain", "category": "action", "text": "{person} waves"}]
    path = tmp_path / "suite.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    suite = load_suite(path)
    left, plain = suite.jobs()
    assert (left.text, left.negative_text, plain.negative_text) == ("A woman turns to the left", "A woman turns to the right", "")

    calls = []
    generator = object.__new__(Generator)  # the pipeline and the face backend replaced by recorders
    generator.settings = GenerationSettings(steps=2, guidance_scale=3.0, identity_guidance_scale=1.5)
    generator.pipe = lambda **kwargs: calls.append(kwargs) or SimpleNamespace(frames=[None])
    generator._features = {"a": SimpleNamespace(face_crop=None, id_cond=None, id_vit_hidden=None, keypoints=None)}
    generator.generate(left)
    generator.generate(plain)
    assert [c["negative_prompt"] for c in calls] == ["A woman turns to the right", ""]
    assert [c["prompt"] for c in calls] == ["A woman turns to the left", "A woman waves"]
    assert {(c["identity_guidance_scale"], c["identity_guidance_negative"]) for c in calls} == {(1.5, "face_latent")}
    rows = manifest_rows(suite, tmp_path / "run")
    assert rows[0]["negative_prompt"] == "A woman turns to the right" and "negative_prompt" not in rows[1]

    lines[1]["negative_prompt"] = ["not", "text"]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(SuiteError, match=r"suite.jsonl:2: negative_prompt of prompt 'left' must be a string"):
        load_suite(path)
