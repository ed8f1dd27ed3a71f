"""From command to file with the shipped toy model: wall time of `proteus-id demo` as a user runs it (a new
process each time: Python start, imports, model loading, face features, sampling, video and preview written).

    python benchmarks/toy_demo_time.py [--repeats 3] [--steps N]

Prints each run, the median, and the ratio to the 30 s budget of the issue (below 1.0 is within budget).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_SECONDS = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, help="sampling steps (default: the model's recommendation)")
    parser.add_argument("--face", help="example face name (default: the first)")
    args = parser.parse_args()
    extra = (["--steps", str(args.steps)] if args.steps else []) + (["--face", args.face] if args.face else [])
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            out = Path(tmp) / f"demo{k}.mp4"
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "proteus_id.cli.main", "demo", "--out", str(out), *extra],
                                  capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            elapsed = time.perf_counter() - start
            if done.returncode != 0 or not out.is_file():
                print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "demo failed", file=sys.stderr)
                return 1
            times.append(elapsed)
            print(f"run {k + 1}: {elapsed:.1f} s  ({done.stdout.strip().splitlines()[0]})")
    median = statistics.median(times)
    load = os.getloadavg()[0]
    print(f"median {median:.1f} s over {len(times)} runs; ratio to the {BUDGET_SECONDS:.0f} s budget: "
          f"{median / BUDGET_SECONDS:.2f} (load average {load:.1f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
