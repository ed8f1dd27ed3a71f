"""Where the per-video tasks run, behind one interface: in this process, or as Ray tasks (local or a cluster).

`map_unordered(fn, items, *args)` yields `fn(item, *args)` as each finishes. The Ray executor keeps a bounded
number of tasks in flight (one per worker), so a million-video input is not submitted at once and results stream
back to the store as they complete. With `--ray-address` the same code runs on a cluster; the input videos and the
output folder must then be on storage every node sees (the tasks read videos and may write mask PNGs).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator, Protocol

from ..errors import UserError, require

log = logging.getLogger(__name__)


class Executor(Protocol):
    name: str
    workers: int

    def map_unordered(self, fn: Callable, items: list, *args, on_failure: Callable | None = None) -> Iterator: ...

    def close(self) -> None: ...


class InProcessExecutor:
    """Runs tasks one after another here: unit tests, debugging, machines without Ray."""

    name = "local"
    workers = 1

    def map_unordered(self, fn: Callable, items: list, *args, on_failure: Callable | None = None) -> Iterator:
        for item in items:
            yield fn(item, *args)  # a crash here is a crash of this process: nothing to turn into a result

    def close(self) -> None:
        pass


class RayExecutor:
    """One Ray task per item, one CPU each. Starts a local Ray instance unless `address` names a cluster.

    `workers` caps the tasks running at once (default: the cluster's CPUs). If Ray is already initialised in this
    process (a test session, a notebook), that instance is used and left running on close.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, num_cpus: int | None = None):
        ray = require("ray", "curate", "the Ray executor")
        self.ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                if address:  # a running cluster: its resources are its own
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
                else:
                    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise UserError(f"cannot start or reach Ray at {address or 'a local instance'}: {err}") from err
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, min(workers or cpus, cpus))
        self._remote_cache: dict = {}

    def map_unordered(self, fn: Callable, items: list, *args, on_failure: Callable | None = None) -> Iterator:
        """`on_failure(item, message)` turns a task that died (worker crash, out of memory; retried once first) into
        a result, so one bad video cannot end the run; without it the error propagates."""
        ray = self.ray
        remote = self._remote_cache.setdefault(fn, ray.remote(num_cpus=1, max_retries=1)(fn))
        shared = [ray.put(a) for a in args]  # sent once, not once per task
        pending = list(items)
        in_flight: dict = {}  # ObjectRef -> item
        while pending or in_flight:
            while pending and len(in_flight) < self.workers:
                item = pending.pop(0)
                in_flight[remote.remote(item, *shared)] = item
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            item = in_flight.pop(ready[0])
            try:
                yield ray.get(ready[0])
            except ray.exceptions.RayError as err:
                if on_failure is None:
                    raise
                yield on_failure(item, f"{type(err).__name__}: {err}")

    def close(self) -> None:
        if self._owns_ray:
            self.ray.shutdown()


def make_executor(kind: str, address: str | None = None, workers: int | None = None) -> Executor:
    if kind == "local":
        if address:
            raise UserError("--ray-address needs the ray executor (leave --executor at its default)")
        return InProcessExecutor()
    if kind == "ray":
        return RayExecutor(address=address, workers=workers, num_cpus=workers if not address else None)
    raise UserError(f"unknown executor {kind!r}; choose 'ray' or 'local'")
