"""`proteus-id evaluate`: a run manifest -> per-row results on disk -> tables and a report.

Processes: run under `accelerate launch --num_processes N` and each process takes every N-th row (accelerate's
PartialState gives the rank); the main process waits for the others, then writes the tables and the report.
Resumable: each row's result is written atomically when the row finishes (store.py), and a rerun evaluates only
rows without a result for the same metric settings. Failed rows (unreadable video or image, a metric that raised)
are recorded with their reason while the run goes on.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .config import EvalConfig
from .manifest import EvalRow, read_manifest
from .metrics.base import Metric, MetricUnavailable, NotApplicable, registered_metrics
from .store import RowStore
from .video import VideoReadError, load_video

logger = logging.getLogger("proteus_id")
RECORD_VERSION = 1


@dataclass
class EvaluationResult:
    out_dir: Path
    summary: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.summary["counts"]["failed"]


def load_plugins(modules: list[str] | None = None) -> list[str]:
    """Import plug-in modules (each registers its metrics on import) and the `proteus_id.metrics` entry points."""
    loaded = []
    for name in modules or []:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise UserError(f"cannot import metric plug-in {name!r}: {err}") from err
        loaded.append(name)
    from importlib.metadata import entry_points

    for ep in entry_points(group="proteus_id.metrics"):
        target = ep.load()
        if callable(target):
            target()
        loaded.append(ep.value)
    return loaded


def build_metrics(config: EvalConfig) -> tuple[list[Metric], dict[str, str]]:
    """Every selected metric that can run, and the reasons for those that cannot (weights absent, ...)."""
    registry = registered_metrics()
    names = config.metrics or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UserError(f"unknown metrics {', '.join(unknown)}; available: {', '.join(registry)}")
    metrics, skipped = [], {}
    for name in names:
        try:
            metrics.append(registry[name].factory(config))
        except MetricUnavailable as err:
            skipped[name] = str(err)
    return metrics, skipped


def run_fingerprint(metrics: list[Metric], config: EvalConfig) -> str:
    return "|".join([f"v{RECORD_VERSION}", f"frames={config.sample_frames}", *sorted(m.fingerprint() for m in metrics)])


def inputs_stamp(row: EvalRow) -> str:
    """A hash of the row's video and photo bytes: a video regenerated at the same path (new weights, new settings)
    is evaluated again instead of reusing the old result. Hashing whole files is cheap next to decoding them."""
    digest = hashlib.sha1()
    for path in (row.video, row.image):
        if path is None or not Path(path).is_file():
            digest.update(b"-")  # a missing file: the row fails now and is retried once the file appears
            continue
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def evaluate_row(row: EvalRow, metrics: list[Metric], config: EvalConfig) -> tuple[dict, dict, bytes | None]:
    """One row -> (record, arrays, contact sheet JPEG). Never raises for a bad video or image: the record says why."""
    from ..identity.image_io import ImageReadError, load_image

    record: dict[str, Any] = {
        "version": RECORD_VERSION, "key": row.key, "index": row.index, "status": "ok", "reason": None,
        "video": str(row.video), "image": str(row.image) if row.image else None, "prompt": row.prompt,
        "extra": row.extra, "metrics": {}, "notes": {}, "pid": os.getpid(),
    }
    start = time.perf_counter()
    arrays: dict[str, np.ndarray] = {}
    if row.image is not None:
        try:
            load_image(row.image, max_side=64)  # readable? (the identity metrics load it at full size, cached)
        except ImageReadError as err:
            return _failed(record, f"unreadable image: {err}", start), {}, None
    try:
        video = load_video(row.video, config.sample_frames)
    except VideoReadError as err:
        return _failed(record, f"unreadable video: {err}", start), {}, None
    record.update(frames=video.num_frames, fps=video.fps, height=video.size[0], width=video.size[1])
    for metric in metrics:
        try:
            values = metric.compute(video, row)
            collected = metric.collect(video, row)
        except NotApplicable as err:
            record["notes"][metric.name] = str(err)
            continue
        except Exception as err:  # a metric bug must not cost the other rows; the row fails loudly with the cause
            logger.warning("metric %s failed on %s:\n%s", metric.name, row.video, traceback.format_exc())
            return _failed(record, f"metric {metric.name} raised {err.__class__.__name__}: {err}", start), {}, None
        for column, value in values.items():
            record["metrics"][column] = float(value) if value is not None and math.isfinite(value) else None
        for name, array in (collected or {}).items():
            arrays[f"{metric.name}/{name}"] = np.asarray(array)
    from .report.contact_sheet import sheet_for_row

    faces = None
    if "faces" in video.cache:
        from .metrics.faces import shared_face_analysis

        faces = shared_face_analysis(config.face_upsample)
    sheet = sheet_for_row(video, row, config.contact_frames, faces)
    record["seconds"] = round(time.perf_counter() - start, 3)
    record["evaluated_at"] = time.time()
    return record, arrays, sheet


def _failed(record: dict, reason: str, start: float) -> dict:
    record.update(status="failed", reason=reason, seconds=round(time.perf_counter() - start, 3), evaluated_at=time.time())
    return record


def run_evaluation(manifest: str | Path, out_dir: str | Path, config: EvalConfig | None = None, *,
                   plugins: list[str] | None = None, retry_failed: bool = False, fresh: bool = False,
                   progress: bool = True, write_report: bool = True) -> EvaluationResult | None:
    """Evaluate every row of `manifest` into `out_dir`. Returns the result on the main process, None on others."""
    from tqdm.auto import tqdm

    from .processes import process_state

    config = config or EvalConfig()
    config.check_explicit_paths()
    load_plugins(plugins)
    rows = read_manifest(manifest)
    out_dir = Path(out_dir)
    state = process_state()
    store = RowStore(out_dir)
    if state.is_main_process:
        store.clean_stale_temp()
    run_id = _shared_run_id(state)
    metrics, skipped = build_metrics(config)
    fingerprint = run_fingerprint(metrics, config)
    mine = rows[state.process_index :: state.num_processes]
    stamps = {r.key: inputs_stamp(r) for r in mine}
    todo = [r for r in mine if fresh or not store.is_done(r.key, fingerprint, retry_failed, inputs=stamps[r.key])]
    if state.is_main_process:
        logger.info("%d rows (%d of this process's %d already evaluated); metrics: %s%s", len(rows), len(mine) - len(todo),
                    len(mine), ", ".join(m.name for m in metrics) or "none",
                    f"; skipped: {', '.join(skipped)}" if skipped else "")
    bar = tqdm(todo, desc=f"evaluate [{state.process_index}]" if state.num_processes > 1 else "evaluate",
               position=state.process_index, disable=not progress, unit="video")
    for row in bar:
        record, arrays, sheet = evaluate_row(row, metrics, config)
        record["fingerprint"] = fingerprint
        record["inputs"] = stamps[row.key]
        record["run_id"] = run_id
        store.save(row.key, record, arrays, sheet)
        if record["status"] != "ok":
            logger.warning("row %d failed: %s", row.index, record["reason"])
    bar.close()
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    return finish(rows, store, metrics, skipped, config, run_id, manifest=str(manifest), write_report=write_report)


def _shared_run_id(state) -> str:
    """One id for this run, the same in every process: records carry it, so the summary can tell rows evaluated
    now from rows reused from an earlier (possibly killed) run."""
    run_id = [f"{time.time_ns():x}-{os.getpid()}"]
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(run_id, from_process=0)
    return run_id[0]


def finish(rows: list[EvalRow], store: RowStore, metrics: list[Metric], skipped: dict[str, str], config: EvalConfig,
           run_id: str, manifest: str, write_report: bool = True) -> EvaluationResult:
    """Gather every row's record, run the set-level metrics, write per_video.csv, summary.json and the report."""
    from .summary import build_summary, metric_columns, write_per_video_csv, write_summary

    records = []
    for row in rows:
        record = store.load(row.key)
        if record is None:
            raise UserError(f"row {row.index} ({row.video}) has no result in {store.rows_dir}: a process stopped early; "
                            "rerun the same command to finish")
        records.append(record)
    declared = [c for m in metrics for c in m.columns]
    columns = metric_columns(records, declared)
    direction = {c: d for m in metrics for c, d in m.higher_is_better.items()}
    set_level: dict[str, Any] = {}
    for metric in metrics:
        if not metric.is_set_level:
            continue
        collected = []
        for record in records:
            if record["status"] != "ok":
                continue
            arrays = store.load_arrays(record["key"])
            prefix = f"{metric.name}/"
            item = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            collected.append(item or None)
        set_level.update(metric.reduce(collected))
    evaluated_now = sum(1 for r in records if r.get("run_id") == run_id)
    info = {m.name: m.describe() for m in metrics}
    summary = build_summary(records, columns, metrics_info=info, skipped=skipped, set_level=set_level,
                            config=config.to_json(), evaluated_now=evaluated_now, manifest=manifest, direction=direction)
    out = store.root
    write_per_video_csv(records, columns, out / "per_video.csv")
    write_summary(summary, out / "summary.json")
    if write_report:
        from .report.render import write_reports

        write_reports(summary, records, store, columns)
    return EvaluationResult(out, summary, records)
