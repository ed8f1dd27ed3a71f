"""Manifest -> feature cache, resumable and split over processes (`accelerate launch ... precompute` or one process).

Each process takes every N-th row that is not in the cache yet, computes its features (`FeatureExtractor`) and
writes shards of `shard_size` items atomically. An interrupted run loses at most the unwritten buffer (on SIGTERM /
Ctrl-C the buffer is flushed first); a rerun skips finished items and retries failed ones. The main process then
rebuilds index.json from the shards and prints done / skipped / failed with reasons.
"""

from __future__ import annotations

import logging
import signal
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import UserError
from .cache import ShardWriter, build_index, list_shards, save_tensors_atomic, shard_items, write_json_atomic
from .clips import ItemError
from .features import FeatureExtractor, FeatureSettings
from .manifest import read_manifest

logger = logging.getLogger("proteus_id")


@dataclass
class PrecomputeSummary:
    rows: int = 0
    done: int = 0  # computed in this run
    already: int = 0  # found in the cache (earlier runs)
    skipped_invalid: int = 0  # rows with manifest errors
    skipped_untrainable: int = 0  # well-formed rows without caption or identity prompt (a validator warning)
    failed: int = 0
    reasons: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)

    def merge(self, other: "PrecomputeSummary") -> None:
        self.done += other.done
        self.skipped_untrainable += other.skipped_untrainable
        self.failed += other.failed
        self.reasons.update(other.reasons)
        self.failures.extend(other.failures)

    def lines(self) -> list[str]:
        out = [f"{self.rows} rows: {self.done} computed, {self.already} already cached, "
               f"{self.skipped_invalid} skipped (manifest errors), {self.skipped_untrainable} skipped (no caption or "
               f"identity prompt), {self.failed} failed"]
        out += [f"  {n:6d} x {reason}" for reason, n in self.reasons.most_common()]
        return out

    def as_dict(self) -> dict:
        data = asdict(self)
        data["reasons"] = dict(self.reasons)
        return data


class _Interrupted(Exception):
    pass


def _raise_interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Interrupted(f"signal {signum}")


def cached_ids(root: Path) -> set[str]:
    return {entry["id"] for shard in list_shards(root) for entry in shard_items(shard)}


def check_settings(root: Path, resolved: dict) -> None:
    """First run: write settings.json. Rerun: the settings must be the same (else the cache would mix items)."""
    import json

    path = root / "settings.json"
    if not path.is_file():
        write_json_atomic(path, resolved)
        return
    old = json.loads(path.read_text())
    changed = sorted(k for k in set(old) | set(resolved) if old.get(k) != resolved.get(k))
    if changed:
        diffs = "; ".join(f"{k}: {old.get(k)!r} -> {resolved.get(k)!r}" for k in changed)
        raise UserError(f"cache {root} was made with other settings ({diffs}); use a new output folder or the same settings")


def run_precompute(
    manifest_path: str | Path,
    out_dir: str | Path,
    settings: FeatureSettings,
    shard_size: int = 64,
    max_bad_fraction: float = 0.05,
    face_backend=None,
    progress: bool = True,
) -> PrecomputeSummary:
    import torch
    from accelerate import PartialState
    from tqdm import tqdm

    state = PartialState(cpu=not torch.cuda.is_available())  # CPU processes join a gloo group
    root = Path(out_dir)
    manifest = read_manifest(manifest_path)
    summary = PrecomputeSummary(rows=manifest.total_lines)
    for issue in manifest.issues:
        if issue.errors:
            summary.skipped_invalid += 1
            summary.reasons[f"manifest error: {issue.errors[0]}"[:120]] += 1

    extractor = FeatureExtractor(settings, state.device, face_backend=face_backend)
    if state.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".*.tmp"):  # half-written files of a killed run (no process writes yet)
            stale.unlink()
        check_settings(root, extractor.resolved())
        if not (root / "null_text.safetensors").is_file():
            save_tensors_atomic(root / "null_text.safetensors", extractor.null_text(), {})
    state.wait_for_everyone()
    if not state.is_main_process:
        check_settings(root, extractor.resolved())

    done_ids = cached_ids(root)
    todo = [row for row in manifest.rows if row.id not in done_ids]
    summary.already = len(manifest.rows) - len(todo)
    mine = todo[state.process_index :: state.num_processes]
    local = PrecomputeSummary()
    writer = ShardWriter(root, state.process_index, shard_size)
    previous = signal.getsignal(signal.SIGTERM)
    if state.num_processes == 1 or state.is_local_main_process:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        bar = tqdm(mine, desc=f"precompute [{state.process_index}]", unit="clip", disable=not (progress and state.is_main_process))
        count = 0
        for row in bar:
            if not row.trainable:  # well-formed but not trainable: skipped and counted, not a failure
                local.skipped_untrainable += 1
                local.reasons["not trainable: no caption or identity prompt"] += 1
                continue
            count += 1
            try:
                tensors, meta = extractor.compute(row)
            except UserError as err:  # ItemError and annotation/image errors: this row is unusable, count why
                local.failed += 1
                reason = str(err) if isinstance(err, ItemError) else f"{err.__class__.__name__}: {err}"
                local.reasons[_reason_kind(reason)] += 1
                local.failures.append({"id": row.id, "line": row.line, "reason": reason})
                logger.warning("%s (line %d): %s", row.id, row.line, reason)
                if count >= 20 and local.failed / count > max_bad_fraction:
                    raise UserError(
                        f"{local.failed} of {count} rows failed (more than --max-bad-fraction {max_bad_fraction}); "
                        f"last: {row.id}: {reason}. Fix the data (proteus-id data validate) or raise the limit"
                    ) from err
                continue
            writer.add(row.id, tensors, meta)
            local.done += 1
        writer.flush()
    except (_Interrupted, KeyboardInterrupt):
        writer.flush()  # keep the finished items; the rerun continues from here
        raise KeyboardInterrupt
    finally:
        if state.num_processes == 1 or state.is_local_main_process:
            signal.signal(signal.SIGTERM, previous)

    from accelerate.utils import gather_object

    parts = gather_object([local]) if state.num_processes > 1 else [local]
    for part in parts:
        summary.merge(part)
    total = summary.done + summary.failed
    if state.is_main_process:
        build_index(root, extractor.resolved(), summary.as_dict())
    state.wait_for_everyone()
    if total and summary.failed / total > max_bad_fraction:
        raise UserError(f"{summary.failed} of {total} rows failed (more than --max-bad-fraction {max_bad_fraction}); "
                        "the cache holds the others. Fix the data or raise the limit")
    return summary


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary: paths become <path>, numbers N ("clip has N frames, training needs N")."""
    import re

    words = ["<path>" if "/" in w else re.sub(r"\d+", "N", w) for w in reason.split()]
    return " ".join(words)[:120]
