"""Two or more `proteus-id bench` runs of the same suite, side by side: each run's mean and 95% interval per metric,
every run minus the first, video by video (paired bootstrap interval; the runs must share identities, prompts
and seeds, as benchmarks of the toy suite with the same settings do), and the motion judge's hits per prompted
motion (the prompt read back with the world's phrase tables).

    python benchmarks/toy_compare_benches.py ROOT/bench/shipped ROOT/bench/cont2500 [more ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ("toy_facesim", "toy_text_alignment", "toy_motion_hit", "toy_attribute_hit", "toy_speed_hit",
           "flow_magnitude", "temporal_flicker")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="bench output folders (eval/summary.json, eval/per_video.csv)")
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("give at least two bench folders")
    from proteus_id.toyworld.ablation import paired_differences

    names = [run.name for run in args.runs]
    if len(set(names)) != len(names):
        parser.error("bench folders must have different names")
    for run in args.runs:
        if not (run / "eval" / "summary.json").is_file():
            parser.error(f"{run} has no eval/summary.json (run proteus-id bench or evaluate first)")
    print("| metric | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    summaries = [json.loads((run / "eval" / "summary.json").read_text())["metrics"] for run in args.runs]
    for metric in METRICS:
        cells = []
        for summary in summaries:
            stats = summary.get(metric) or {}
            cells.append(f"{stats['mean']:.3f} [{stats['ci95'][0]:.3f}, {stats['ci95'][1]:.3f}]" if stats.get("ci95") else "-")
        print(f"| {metric} | " + " | ".join(cells) + " |")
    paired = paired_differences({run.name: run / "eval" / "per_video.csv" for run in args.runs}, reference=names[0],
                                rows=names[1:], metrics=METRICS)
    print(f"\npaired, run minus {names[0]} (same videos):")
    for name, stats in paired.items():
        cells = [f"{metric} {s['mean']:+.3f} [{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}] (n={s['n']})"
                 for metric, s in stats.items() if s["mean"] is not None]
        print(f"  {name}: " + "; ".join(cells))
    print("\nmotion recognised / clips, per prompted motion:")
    print("| motion | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    tallies = [motion_hits(run / "eval" / "per_video.csv") for run in args.runs]
    for motion in sorted(set().union(*tallies)):
        print(f"| {motion} | " + " | ".join("{}/{}".format(*t[motion]) if motion in t else "-" for t in tallies) + " |")
    return 0


def motion_hits(per_video: Path) -> dict[str, tuple[int, int]]:
    """{motion: (recognised, clips)} over the run's judged videos."""
    import csv

    from proteus_id.toyworld.captions import parse_prompt

    tally: dict[str, list[int]] = {}
    with open(per_video, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("status") != "ok" or row.get("toy_motion_hit") in (None, ""):
                continue
            counts = tally.setdefault(parse_prompt(row["prompt"]).get("motion", "?"), [0, 0])
            counts[0] += float(row["toy_motion_hit"]) > 0.5
            counts[1] += 1
    return {motion: (hits, clips) for motion, (hits, clips) in tally.items()}


if __name__ == "__main__":
    raise SystemExit(main())
