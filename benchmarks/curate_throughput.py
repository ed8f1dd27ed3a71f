"""Curation throughput: clips per minute in this process, and on Ray with 1 and 2 workers (the speed-up ratio).

    python benchmarks/curate_throughput.py [--videos 8] [--fps 24] [--width 480] [--workdir DIR]

Makes `--videos` story videos (scikit-image's public-domain astronaut: a pan-and-zoom on the face, a faceless
stretch, two faces, a still stretch; alternately mirrored and shifted, so dedup keeps some and drops others) at the
given frame rate and size, then curates them with the shipped default settings (49-frame windows) three times into
fresh dataset folders: in-process, Ray with 1 worker, Ray with 2 workers (one local Ray instance with 2 CPUs). Not
timed: Ray's start-up and a warm-up run on two videos before the in-process and before the Ray runs (imports, model
loading). Prints seconds, clips, clips per minute and video seconds per second for each run, the 2-worker / 1-worker
speed-up, and the load average before and after: on a machine shared with other jobs the numbers mean little.
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
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"{args.videos} videos, {seconds_of_video:.0f} s of {args.width}x{args.width * 3 // 4} video at {args.fps} fps, "
          f"{os.cpu_count()} CPUs; default settings (49-frame windows)")

    # untimed warm-ups (imports, model loading) on two of the videos, in this process and in both Ray workers
    warm = work / "warmup"
    warm.mkdir(exist_ok=True)
    for name in sorted(os.listdir(source))[:2]:
        shutil.copy(source / name, warm / name)
    runs = {}
    timed_run(warm, work / "out_warmup_local", InProcessExecutor())
    runs["in-process"] = timed_run(source, work / "out_local", InProcessExecutor())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        timed_run(warm, work / "out_warmup_ray", RayExecutor(workers=2))
        for workers in (1, 2):
            executor = RayExecutor(workers=workers)
            runs[f"ray x{workers}"] = timed_run(source, work / f"out_ray{workers}", executor)
    finally:
        ray.shutdown()

    manifests = {name: (work / f"out_{suffix}" / "manifest.jsonl").read_bytes()
                 for name, suffix in (("in-process", "local"), ("ray x1", "ray1"), ("ray x2", "ray2"))}
    # clips = clips the tasks produced (before near-duplicate removal: the variants share most frames, and dedup
    # rightly drops some of them; it runs once at the end and costs nothing measurable here)
    print(f"{'run':12s} {'seconds':>8s} {'clips':>6s} {'in manifest':>12s} {'clips/min':>10s} {'video s / s':>12s}")
    for name, (seconds, funnel) in runs.items():
        made = funnel["stages"][-1]["in"]
        print(f"{name:12s} {seconds:8.1f} {made:6d} {funnel['clips']:12d} {made / seconds * 60:10.1f} {seconds_of_video / seconds:12.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    speedup = runs["ray x1"][0] / runs["ray x2"][0]
    print(f"speed-up ray x2 / ray x1: {speedup:.2f}x (wall time ratio)")
    print(f"identical manifests across the three runs: {len(set(manifests.values())) == 1}")
    summary = {name: {"seconds": round(s, 2), "clips": f["stages"][-1]["in"], "clips_per_min": round(f["stages"][-1]["in"] / s * 60, 2)}
               for name, (s, f) in runs.items()}
    print(json.dumps({"runs": summary, "speedup_2_over_1": round(speedup, 3)}))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
