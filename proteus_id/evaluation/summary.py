"""From row records to the two tables: per_video.csv (one line per manifest row) and summary.json (per metric:
n, mean, std, 95% bootstrap interval of the mean; counts; skipped metrics with reasons; set-level numbers)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .store import atomic_write_text

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # fixed, so the same results give the same interval


def bootstrap_interval(values: np.ndarray, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resampling videos with replacement)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return (math.nan, math.nan)
    if values.size == 1:
        return (float(values[0]), float(values[0]))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def column_stats(values: list[float]) -> dict[str, Any]:
    arr = np.array([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if arr.size == 0:
        return {"n": 0}
    lo, hi = bootstrap_interval(arr)
    return {
        "n": int(arr.size),
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "ci95": [lo, hi],
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def metric_columns(records: list[dict[str, Any]], declared: list[str]) -> list[str]:
    """Declared columns in metric order, then any other column found in records (from an older run's metrics)."""
    seen = list(declared)
    for record in records:
        for column in record.get("metrics", {}):
            if column not in seen:
                seen.append(column)
    return seen


def write_per_video_csv(records: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    extra_keys: list[str] = []
    for record in records:
        for key in record.get("extra", {}):
            if key not in extra_keys and key not in columns:
                extra_keys.append(key)
    header = ["index", "key", "status", "reason", "video", "image", "prompt", *extra_keys, *columns, "notes"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for r in records:
        extra = r.get("extra", {})
        metrics = r.get("metrics", {})
        notes = "; ".join(f"{k}: {v}" for k, v in r.get("notes", {}).items())
        writer.writerow([
            r["index"], r["key"], r["status"], r.get("reason") or "", r.get("video", ""), r.get("image") or "",
            r.get("prompt") or "",
            *[_cell(extra.get(k)) for k in extra_keys],
            *[_number(metrics.get(c)) for c in columns],
            notes,
        ])
    atomic_write_text(path, buffer.getvalue())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}"


def build_summary(records: list[dict[str, Any]], columns: list[str], *, metrics_info: dict[str, Any],
                  skipped: dict[str, str], set_level: dict[str, Any], config: dict[str, Any],
                  evaluated_now: int, manifest: str, direction: dict[str, bool | None]) -> dict[str, Any]:
    ok = [r for r in records if r["status"] == "ok"]
    failed = [r for r in records if r["status"] != "ok"]
    per_metric = {}
    for column in columns:
        stats = column_stats([r.get("metrics", {}).get(column) for r in ok])
        stats["higher_is_better"] = direction.get(column)
        per_metric[column] = stats
    return {
        "manifest": manifest,
        "counts": {
            "rows": len(records),
            "ok": len(ok),
            "failed": len(failed),
            "evaluated_this_run": evaluated_now,
            "reused_from_earlier_runs": len(records) - evaluated_now,
        },
        "metrics": per_metric,
        "set_level": set_level,
        "metrics_used": metrics_info,
        "skipped_metrics": skipped,
        "failed_rows": [{"index": r["index"], "video": r.get("video"), "reason": r.get("reason")} for r in failed],
        "interval": f"95% percentile bootstrap of the mean over videos, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}",
        "config": config,
    }


def write_summary(summary: dict[str, Any], path: Path) -> None:
    atomic_write_text(path, json.dumps(summary, indent=2, default=str) + "\n")
