"""Shared tiny training data: a model folder, synthetic clips (PyAV), and one clean feature cache."""

from __future__ import annotations

import pytest
from training_helpers import PRECOMPUTE, register

register()


@pytest.fixture(scope="session")
def training_data(tmp_path_factory, tiny_model_dir):
    """(model dir, manifest, clean cache dir) shared by the training tests."""
    from proteus_id.training.features import FeatureSettings
    from proteus_id.training.precompute import run_precompute
    from proteus_id.training.synthetic import make_synthetic_dataset

    import torch

    torch.set_num_threads(1)  # session fixtures run before the autouse one
    root = tmp_path_factory.mktemp("training")
    manifest = make_synthetic_dataset(root / "data", num_clips=5, height=48, width=64, clip_frames=9, extra_frames=2)
    cache = root / "cache"
    run_precompute(manifest, cache, FeatureSettings(model=str(tiny_model_dir), **PRECOMPUTE), shard_size=2, progress=False)
    return tiny_model_dir, manifest, cache


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread than two on a shared 2-core machine (and results stay deterministic)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """Each in-process train() may choose its own mixed precision: accelerate keeps one state per process."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)
