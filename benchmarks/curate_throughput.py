"""Curation throughput: clips per minute in this process, and on Ray with 1 and 2 workers (the speed-up ratio).

    python benchmarks/curate_throughput.py [--videos 8] [--fps 24] [--width 480] [--workdir DIR]

Makes `--videos` story videos (scikit-image's public-domain astronaut: a pan-and-zoom on the face, a faceless
stretch, two faces, a still stretch; each video mirrored or shifted so none is a near-duplicate of another) at the
given frame rate and size, then curates them with the shipped default settings (49-frame windows) three times into
fresh dataset folders: in-process, Ray with 1 worker, Ray with 2 workers (one local Ray instance with 2 CPUs; its
start-up and an untimed warm-up run that starts both workers are not timed). Prints videos, clips and seconds per run, clips per minute,
and the 2-worker / 1-worker speed-up. On a machine shared with other jobs the ratio is lower than the core count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def make_videos(folder: Path, count: int, fps: int, width: int) -> float:
    """`count` distinct story videos; returns their total duration in seconds."""
    from proteus_id.curation.synthetic import STORY_LENGTHS, encode, story_frames

    scale = max(1, round(fps / 8))  # the story is timed for 8 fps; keep its seconds at other rates
    lengths = tuple(n * scale for n in STORY_LENGTHS)
    base = story_frames(size=(width, width * 3 // 4), lengths=lengths)
    for i in range(count):
        frames = base[:, :, ::-1] if i % 2 else base  # mirrored
        frames = np.roll(frames, shift=(i // 2) * 7, axis=2)  # and shifted: distinct phashes
        encode(np.ascontiguousarray(frames), folder / f"story_{i:03d}.mp4", fps=fps)
    return count * len(base) / fps


def timed_run(source: Path, out: Path, executor) -> tuple[float, dict]:
    from proteus_id.curation import curate, load_config

    start = time.perf_counter()
    outcome = curate(source, out, load_config(None), executor, progress=False)
    return time.perf_counter() - start, outcome.funnel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--workdir", help="where to write videos and datasets (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray

    from proteus_id.curation import InProcessExecutor, RayExecutor

    work = Path(args.workdir or tempfile.mkdtemp(prefix="curate_bench_"))
    source = work / "videos"
    source.mkdir(parents=True, exist_ok=True)
    seconds_of_video = make_videos(source, args.videos, args.fps, args.width)
    print(f"{args.videos} videos, {seconds_of_video:.0f} s of {args.width}x{args.width * 3 // 4} video at {args.fps} fps, "
          f"{os.cpu_count()} CPUs; default settings (49-frame windows)")

    runs = {}
    runs["in-process"] = timed_run(source, work / "out_local", InProcessExecutor())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        # untimed warm-up: both workers import and load their models once, so neither timed run pays for it
        warm = work / "warmup"
        warm.mkdir(exist_ok=True)
        for name in sorted(os.listdir(source))[:2]:
            shutil.copy(source / name, warm / name)
        timed_run(warm, work / "out_warmup", RayExecutor(workers=2))
        for workers in (1, 2):
            executor = RayExecutor(workers=workers)
            runs[f"ray x{workers}"] = timed_run(source, work / f"out_ray{workers}", executor)
    finally:
        ray.shutdown()

    manifests = {name: (work / f"out_{suffix}" / "manifest.jsonl").read_bytes()
                 for name, suffix in (("in-process", "local"), ("ray x1", "ray1"), ("ray x2", "ray2"))}
    print(f"{'run':12s} {'seconds':>8s} {'clips':>6s} {'clips/min':>10s} {'video s / s':>12s}")
    for name, (seconds, funnel) in runs.items():
        print(f"{name:12s} {seconds:8.1f} {funnel['clips']:6d} {funnel['clips'] / seconds * 60:10.1f} {seconds_of_video / seconds:12.2f}")
    speedup = runs["ray x1"][0] / runs["ray x2"][0]
    print(f"speed-up ray x2 / ray x1: {speedup:.2f}x (wall time ratio)")
    print(f"identical manifests across the three runs: {len(set(manifests.values())) == 1}")
    summary = {name: {"seconds": round(s, 2), "clips": f["clips"]} for name, (s, f) in runs.items()}
    print(json.dumps({"runs": summary, "speedup_2_over_1": round(speedup, 3)}))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
