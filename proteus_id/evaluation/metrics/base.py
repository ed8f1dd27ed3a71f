"""The metric interface and registry.

A metric turns one decoded video (+ its manifest row) into named numbers:

    class Metric:
        name: str                       registry name, also the key of its notes and skip reasons
        columns: tuple[str, ...]        snake_case per-video columns it fills (may be empty for set-level metrics)
        higher_is_better: dict          column -> True/False/None, for the report's arrows
        def compute(video, row) -> dict[str, float]          per-video numbers (missing column = not defined here)
        def collect(video, row) -> dict[str, np.ndarray]     optional: arrays kept on disk for set-level metrics
        def reduce(collected) -> dict[str, float]            optional: set-level numbers from every row's arrays
        def fingerprint() -> str                             settings + weights identity; a change re-evaluates rows
        def describe() -> dict                               what the report says about it (weights file, ...)

`compute` raises `NotApplicable(reason)` when the metric has no value for this row (no reference image, no face in
the reference...): the row stays ok and the reason is kept in its notes. A factory raises `MetricUnavailable(reason)`
when the metric cannot run at all (weights absent, package missing): the metric is skipped for the whole run and the
report says why. Nothing is ever filled in with a made-up number.

Plug-ins: `register_metric(name, fn)` with `fn(video, row) -> float | dict[str, float]` is enough for a judge that
needs no setup; `register_metric_factory(name, factory)` with `factory(config) -> Metric` for one that loads weights.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ...errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from ..config import EvalConfig
    from ..manifest import EvalRow
    from ..video import VideoSample


class MetricWeightsError(UserError):
    """A weights file that exists but is not what the metric needs (wrong network, truncated): fix the path."""


class MetricUnavailable(Exception):
    """The metric cannot run in this setup (weights or package missing); the message is the reason shown."""


class NotApplicable(Exception):
    """The metric has no value for this row (e.g. the reference photo has no face); the message is the note kept."""


class Metric:
    name: str = "metric"
    group: str = "plugin"
    columns: tuple[str, ...] = ()
    higher_is_better: dict[str, bool | None] = {}
    description: str = ""

    def compute(self, video: "VideoSample", row: "EvalRow") -> dict[str, float]:
        return {}

    def collect(self, video: "VideoSample", row: "EvalRow") -> dict[str, np.ndarray] | None:
        return None

    def reduce(self, collected: list[dict[str, np.ndarray]]) -> dict[str, Any]:
        return {}

    @property
    def is_set_level(self) -> bool:
        return type(self).reduce is not Metric.reduce

    def fingerprint(self) -> str:
        return self.name

    def describe(self) -> dict[str, Any]:
        return {"description": self.description}


class FunctionMetric(Metric):
    """A plug-in metric from a plain function `fn(video, row) -> float | dict[str, float]`."""

    def __init__(self, name: str, fn: Callable, columns: tuple[str, ...] | None = None, description: str = "",
                 higher_is_better: bool | None = None, group: str = "plugin"):
        self.name, self.fn, self.description, self.group = name, fn, description, group
        self.columns = tuple(columns) if columns else (name,)
        self.higher_is_better = {c: higher_is_better for c in self.columns}

    def compute(self, video, row):
        value = self.fn(video, row)
        if isinstance(value, dict):
            unknown = set(value) - set(self.columns)
            if unknown:
                raise ValueError(f"metric {self.name} returned columns {sorted(unknown)} it did not declare {self.columns}")
            return {k: float(v) for k, v in value.items()}
        return {self.columns[0]: float(value)}

    def fingerprint(self) -> str:
        module = getattr(self.fn, "__module__", "?")
        return f"{self.name}:{module}.{getattr(self.fn, '__qualname__', repr(self.fn))}"


@dataclass
class MetricEntry:
    name: str
    factory: Callable[["EvalConfig"], Metric]
    group: str
    builtin: bool


_REGISTRY: dict[str, MetricEntry] = {}


def register_metric_factory(name: str, factory: Callable[["EvalConfig"], Metric], group: str = "plugin",
                            builtin: bool = False) -> None:
    """Register a metric built from the run's EvalConfig (use this when the metric loads weights)."""
    if not name.replace("_", "").isalnum() or name.lower() != name:
        raise ValueError(f"metric names are snake_case, got {name!r}")
    _REGISTRY[name] = MetricEntry(name, factory, group, builtin)


def register_metric(name: str, fn: Callable, columns: tuple[str, ...] | None = None, description: str = "",
                    higher_is_better: bool | None = None) -> None:
    """Register a plug-in metric from a function `fn(video: VideoSample, row: EvalRow) -> float | dict`."""
    register_metric_factory(
        name, lambda config: FunctionMetric(name, fn, columns, description, higher_is_better), group="plugin"
    )


def registered_metrics() -> dict[str, MetricEntry]:
    from . import builtin  # noqa: F401  (registers the built-in metrics on first use)

    return dict(_REGISTRY)


def unregister_metric(name: str) -> None:
    _REGISTRY.pop(name, None)


def files_following_links(root: Path) -> list[Path]:
    """Every file under root, through symlinked folders too (Path.rglob skips those before Python 3.13, and
    assembled model folders link their parts), hidden names left out, in a fixed order."""
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found += [Path(folder) / n for n in sorted(names) if not n.startswith(".")]
    return found


def file_identity(path: str | Path) -> str:
    """Name, size and a hash of the first MiB of a weights file or folder: enough to notice swapped weights."""
    path = Path(path)
    if path.is_dir():
        parts = files_following_links(path)
        return hashlib.sha1("|".join(f"{p.relative_to(path)}:{p.stat().st_size}" for p in parts).encode()).hexdigest()[:12]
    with path.open("rb") as f:
        head = f.read(1 << 20)
    return f"{path.name}:{path.stat().st_size}:{hashlib.sha1(head).hexdigest()[:12]}"


def positive_cosine(reference: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """max(0, cos(reference, v)) for each row v: the FaceSim similarity of the ConsisID protocol."""
    reference = np.asarray(reference, np.float64).ravel()
    vectors = np.atleast_2d(np.asarray(vectors, np.float64))
    denom = np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference)
    cos = vectors @ reference / np.maximum(denom, 1e-12)
    return np.maximum(cos, 0.0)
