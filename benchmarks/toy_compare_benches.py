"""Two or more `proteus-id bench` runs of the same suite, side by side: each run's mean and 95% interval per metric,
and every run minus the first, video by video (paired bootstrap interval; the runs must share identities, prompts
and seeds, as benchmarks of the toy suite with the same settings do).

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
