"""The report's figures (matplotlib, Agg backend), returned as PNG bytes so the HTML page can embed them."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width, height), dpi=90)
    return fig, plt


def _png(fig, plt, **adjust) -> bytes:
    buffer = io.BytesIO()
    # fixed margins instead of tight_layout: it draws the figure an extra time (seconds for a 12-panel figure)
    fig.subplots_adjust(**{"left": 0.1, "right": 0.97, "bottom": 0.15, "top": 0.88, **adjust})
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def distributions(records: list[dict[str, Any]], columns: list[str]) -> bytes | None:
    """One small histogram per metric column over the ok videos, with the mean marked."""
    data = {c: [r["metrics"][c] for r in records if r["status"] == "ok" and r["metrics"].get(c) is not None] for c in columns}
    data = {c: v for c, v in data.items() if v}
    if not data:
        return None
    cols = min(4, len(data))
    rows = (len(data) + cols - 1) // cols
    fig, plt = _figure(3.2 * cols, 2.4 * rows)
    for k, (column, values) in enumerate(data.items()):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.hist(values, bins=min(20, max(5, len(values))), color="#4a7bd0", alpha=0.85)
        ax.axvline(float(np.mean(values)), color="#d04a4a", lw=1.5)
        ax.set_title(f"{column} (n={len(values)})", fontsize=9)
        ax.tick_params(labelsize=7)
    return _png(fig, plt, left=0.06, right=0.98, bottom=0.08 / rows, top=1 - 0.12 / rows, hspace=0.6, wspace=0.3)


def identity_over_time(curves: dict[str, np.ndarray], limit: int = 40) -> bytes | None:
    """Per-frame FaceSim-dlib of each video (face frames in order): drift and dips show up as slopes and holes."""
    curves = {k: v for k, v in curves.items() if len(v)}
    if not curves:
        return None
    fig, plt = _figure(7.5, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    for label, values in list(curves.items())[:limit]:
        ax.plot(np.arange(len(values)), values, lw=1, alpha=0.6)
    ax.set_xlabel("sampled face frame")
    ax.set_ylabel("max(0, cos) dlib")
    ax.set_title(f"identity over time ({min(limit, len(curves))} of {len(curves)} videos)", fontsize=10)
    return _png(fig, plt, left=0.12)


def scatter(records: list[dict[str, Any]], x: str, y: str) -> bytes | None:
    """One metric against another over the ok videos (e.g. identity against motion: the trade-off of the task)."""
    points = [(r["metrics"].get(x), r["metrics"].get(y)) for r in records if r["status"] == "ok"]
    points = [(a, b) for a, b in points if a is not None and b is not None]
    if len(points) < 2:
        return None
    fig, plt = _figure(4.5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    arr = np.array(points)
    ax.scatter(arr[:, 0], arr[:, 1], s=14, alpha=0.7, color="#4a7bd0")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{y} vs {x}", fontsize=10)
    return _png(fig, plt, left=0.2)
