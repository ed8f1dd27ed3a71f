"""Curation fixtures: the story videos (made here from scikit-image's public-domain photos), one clean in-process
run shared by the session, and one local Ray instance (num_cpus=2) shared by the session because Ray starts slowly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scenedetect", reason="curation tests need the curate extra")
pytest.importorskip("imagehash", reason="curation tests need the curate extra")
pytest.importorskip("dlib", reason="curation tests need the face extra")
pytest.importorskip("skimage", reason="curation tests need scikit-image (test extra)")



@pytest.fixture(scope="session")
def story_dir(tmp_path_factory) -> Path:
    """a_astronaut.mp4 (the story), b_reupload.mp4 (the same, smaller and re-encoded: near-duplicates),
    short.mp4 (12 frames), truncated.mp4, empty.mp4, notes.mp4 (text) and readme.txt (ignored)."""
    import cv2

    from proteus_id.curation.synthetic import encode, make_broken_files, story_frames

    folder = tmp_path_factory.mktemp("story")
    frames = story_frames()
    encode(frames, folder / "a_astronaut.mp4")
    smaller = np.stack([cv2.resize(f, (288, 216), interpolation=cv2.INTER_AREA) for f in frames])
    encode(smaller, folder / "b_reupload.mp4", crf=28)
    encode(frames[:12], folder / "short.mp4")
    make_broken_files(folder, frames)
    (folder / "readme.txt").write_text("not a video\n")
    return folder


@pytest.fixture(scope="session")
def test_config():
    from curation_helpers import TEST_OVERRIDES

    from proteus_id.curation.config import load_config

    return load_config(None, TEST_OVERRIDES)


@pytest.fixture(scope="session")
def clean_run(story_dir, test_config, tmp_path_factory):
    """One uninterrupted in-process run over the story folder: (out_dir, outcome)."""
    from proteus_id.curation import InProcessExecutor, curate

    out = tmp_path_factory.mktemp("clean") / "dataset"
    outcome = curate(story_dir, out, test_config, InProcessExecutor(), progress=False, sheet_clips=4)
    return out, outcome


@pytest.fixture(scope="session")
def ray_address():
    """A local Ray instance for the whole session; yields its address for drivers in other processes."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
