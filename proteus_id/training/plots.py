"""A loss curve from train_log.jsonl (matplotlib, optional): output_dir/loss.png at the end of a run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..atomic import atomic_path

logger = logging.getLogger("proteus_id")


def plot_losses(log_path: Path, out_path: Path, window: int = 20) -> Path | None:
    """Raw loss per step and its moving average; the learning rate on a second axis. None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib not installed: no loss plot (pip install 'proteus-id[eval]')")
        return None
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not records:
        return None
    steps = [r["step"] for r in records]
    losses = [r["loss"] for r in records]
    smooth = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1]) for i in range(len(losses))]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, losses, color="0.75", linewidth=0.8, label="loss")
    ax.plot(steps, smooth, color="C0", label=f"moving average ({window})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(loc="upper left")
    lr_axis = ax.twinx()
    lr_axis.plot(steps, [r["lr"] for r in records], color="C1", linewidth=0.8)
    lr_axis.set_ylabel("learning rate", color="C1")
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out_path
