"""The curation run: find the videos, skip the finished ones, run the rest on an executor, assemble the manifest.

Resumable by construction: each finished video is committed to the job-state store as its task returns, and the
manifest and funnel are rebuilt from the store at the end (see store.py and assemble.py).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .assemble import assemble
from .atomic import write_text_atomic
from .config import CurateConfig
from .executors import Executor
from .store import JobStore, file_stamp
from .task import VideoJob, failed_result, process_video

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv"}
STATE_DIR = ".curate"


@dataclass
class CurateOutcome:
    funnel: dict
    manifest: Path
    processed: int  # videos run this time (the rest were finished by an earlier run)
    skipped: int


def discover(source: str | Path, out_dir: Path) -> tuple[list[VideoJob], int]:
    """Videos under a folder (recursive, by extension) or listed in a text file (one path a line, # comments).

    Returns the jobs sorted by name and the number of files ignored for their extension. Listed files that do not
    exist stay in: the probe rejects them with a reason, so they show in the funnel.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and not _inside(p, out_dir))
        videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
        named = [(p.relative_to(source).as_posix(), p.resolve()) for p in videos]
        ignored = len(files) - len(videos)
    elif source.is_file():
        named, seen = [], set()
        for raw in source.read_text(encoding="utf-8", errors="replace").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or line in seen:
                continue
            seen.add(line)
            path = Path(line) if Path(line).is_absolute() else source.parent / line
            named.append((Path(line).as_posix(), path.resolve()))
        ignored = 0
    else:
        raise UserError(f"input {source} is neither a folder of videos nor a list file")
    if not named:
        raise UserError(f"no video files in {source} (extensions: {', '.join(sorted(VIDEO_EXTENSIONS))})")
    out = out_dir.resolve()
    jobs = [VideoJob(str(path), name, Path(os.path.relpath(path, out)).as_posix()) for name, path in sorted(named)]
    return jobs, ignored


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def curate(
    source: str | Path, out_dir: str | Path, config: CurateConfig, executor: Executor, progress: bool = True, sheet_clips: int = 0
) -> CurateOutcome:
    """Curate every video of `source` into `out_dir`; `sheet_clips` > 0 also draws a contact sheet of that many clips."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, ignored = discover(source, out_dir)
    state = out_dir / STATE_DIR
    state.mkdir(exist_ok=True)
    lock = open(state / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        raise UserError(f"another curate run is writing {out_dir}; wait for it or choose another --out") from err
    store = JobStore(state / "state.sqlite")
    try:
        fingerprint = config.fingerprint()
        write_text_atomic(state / f"config-{fingerprint}.json", json.dumps(config.to_dict(), indent=2) + "\n")
        stamps = {j.name: file_stamp(j.path) if Path(j.path).is_file() else "missing" for j in jobs}
        done = store.finished(stamps, fingerprint)
        pending = [j for j in jobs if j.name not in done]
        if done:
            log.info("%d of %d videos already finished in %s; running the other %d", len(done), len(jobs), out_dir, len(pending))
        clips = 0
        with tqdm(total=len(jobs), initial=len(done), unit="video", desc=f"curate ({executor.name} x{executor.workers})", disable=not progress) as bar:
            results = executor.map_unordered(process_video, pending, config.to_dict(), str(out_dir), on_failure=failed_result)
            for result in results:
                store.record(result["name"], stamps[result["name"]], fingerprint, result)
                clips += len(result["clips"])
                bar.update(1)
                bar.set_postfix(clips=clips)
                if result["status"] == "error":
                    log.error("bug while curating %s (retried next run):\n%s", result["name"], result["error"])
        funnel = assemble(store.results([j.name for j in jobs]), out_dir, config, ignored, sheet_clips)
    finally:
        store.close()
        lock.close()
    return CurateOutcome(funnel, out_dir / "manifest.jsonl", processed=len(pending), skipped=len(done))
