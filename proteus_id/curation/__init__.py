"""Proteus-Bench style data curation: a folder of raw videos -> training clips (docs/manifest.md) + a funnel report.

Stages, one module each: probe, shots, windows, faces + tracking, motion, reference, masks, captions, dedup. `task`
runs one video through stages 1-8, `runner` schedules videos on an executor (Ray or in-process) with a sqlite job
store (`store`) for resuming, `assemble` writes the manifest and funnel (`funnel`). See docs/curation.md.
"""

from .config import CurateConfig, load_config
from .executors import InProcessExecutor, RayExecutor, make_executor
from .runner import curate, discover

__all__ = ["CurateConfig", "InProcessExecutor", "RayExecutor", "curate", "discover", "load_config", "make_executor"]
