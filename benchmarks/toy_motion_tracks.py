"""Do a benchmark's videos move the way their prompts say? Face-box track of every video (the world's locator)
for the motions that move the face box: horizontal displacement (walk left/right), box-size change (move
closer/away; turns move neither and serve as a control), plus what the motion judge calls them. A diagnostic for `toy_motion_hit`: it separates "the face
moves, but the judge does not recognise it" from "nothing moves".

    python benchmarks/toy_motion_tracks.py ROOT/bench/true_render ROOT/bench/full_s2000 ...

Each argument is a `proteus-id bench` output folder (it reads eval/per_video.csv and the videos it names).
"""

from __future__ import annotations

import argparse
import collections
import csv
from pathlib import Path

import numpy as np

TRACKED = ("walk left", "walk right", "move closer", "move away", "turn left", "turn right")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_dirs", nargs="+", type=Path)
    args = parser.parse_args()

    import torch

    from proteus_id.pipeline.video import read_video
    from proteus_id.toyworld.captions import parse_prompt
    from proteus_id.toyworld.judge_eval import JudgeSet
    from proteus_id.toyworld.ship import JUDGES_DIR

    torch.set_num_threads(1)
    judges = JudgeSet.load(JUDGES_DIR)
    print(f"{'bench':24s} {'motion':12s} {'n':>3s} {'dx px':>7s} {'dsize px':>9s}  judged as (top 3)")
    for bench in args.bench_dirs:
        groups: dict[str, list] = collections.defaultdict(list)
        with open(bench / "eval" / "per_video.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["status"] == "ok"]
        for row in rows:
            motion = parse_prompt(row["prompt"]).get("motion")
            if motion not in TRACKED:
                continue
            frames, _ = read_video(row["video"])
            boxes = np.asarray(judges.locate(frames), dtype=np.float64)
            centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
            size = boxes[:, 2] - boxes[:, 0]
            groups[motion].append((centre_x[-1] - centre_x[0], size[-1] - size[0], judges.motion(frames)["motion"]))
        for motion in TRACKED:
            if motion not in groups:
                continue
            found = np.array([g[:2] for g in groups[motion]])
            judged = ", ".join(f"{name} {count}" for name, count in collections.Counter(g[2] for g in groups[motion]).most_common(3))
            print(f"{bench.name:24s} {motion:12s} {len(found):3d} {found[:, 0].mean():+7.2f} {found[:, 1].mean():+9.2f}  {judged}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
