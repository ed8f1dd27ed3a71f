"""Can the toy recipe learn to make its own training clips move? Writes an overfit probe: a feature cache of a few
training clips per motion (the same shards, a filtered index) and a benchmark suite that prompts each clip's own
caption with its own reference crop, so `proteus-id train` can fit them and `proteus-id bench` +
`toy_motion_tracks.py` can check whether the samples move as the clips do.

    python benchmarks/toy_overfit_subset.py ROOT --out ROOT/probe/overfit --per-motion 16
    # then: a train config with data.cache = ROOT/probe/overfit/cache (see docs/toyworld.md), and
    proteus-id bench --model MODEL --suite ROOT/probe/overfit/suite/suite.jsonl --out ... --plugin proteus_id.toyworld.judge_metrics ...
    python benchmarks/toy_motion_tracks.py ROOT/probe/overfit/bench_...

ROOT is a toy run root (data/train/manifest.jsonl, data/cache-64x64x17). One clip per identity, the first ones in
manifest order. The suite's person slot carries the whole caption, so the prompt is the training caption verbatim.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
from pathlib import Path

DEFAULT_MOTIONS = "walk left,walk right,move closer,move away"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", default="data/cache-64x64x17", help="feature cache under ROOT")
    parser.add_argument("--motions", default=DEFAULT_MOTIONS)
    parser.add_argument("--per-motion", type=int, default=16)
    args = parser.parse_args()

    from proteus_id.atomic import write_json_atomic, write_text_atomic

    train = args.root / "data" / "train"
    source = args.root / args.cache
    if not (train / "manifest.jsonl").is_file() or not (source / "index.json").is_file():
        parser.error(f"{args.root} has no data/train/manifest.jsonl or {args.cache}/index.json")
    motions = [m.strip() for m in args.motions.split(",")]
    picked: dict[str, list[dict]] = collections.defaultdict(list)
    identities: set[int] = set()
    with open(train / "manifest.jsonl") as f:
        for line in f:
            clip = json.loads(line)
            motion, identity = clip["meta"]["scene"]["motion"], clip["meta"]["identity"]
            if motion in motions and len(picked[motion]) < args.per_motion and identity not in identities:
                picked[motion].append(clip)
                identities.add(identity)
    chosen = [clip for motion in motions for clip in picked[motion]]
    ids = {clip["id"] for clip in chosen}

    cache = args.out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():  # shards and null text shared by symlink; only the index is filtered
        if item.name != "index.json" and not (cache / item.name).exists():
            os.symlink(item.resolve(), cache / item.name)
    index = json.loads((source / "index.json").read_text())
    index["items"] = [item for item in index["items"] if item["id"] in ids]
    write_json_atomic(cache / "index.json", index)

    lines = [{"type": "suite", "proteus_bench": 1, "name": f"overfit{len(chosen)}", "prompts_per_identity": 1}]
    for clip in chosen:
        lines.append({"type": "identity", "id": clip["id"], "image": str((train / clip["reference"]["image"]).resolve()),
                      "gender": "unknown", "profession": "none (synthetic person)", "region": "toyworld",
                      "source": "toy training clip", "licence": "CC0 (generated)", "person": clip["caption"],
                      "identity_prompt": clip["identity_prompt"]})
    lines += [{"type": "prompt", "id": f"{clip['id']}-p", "category": "action", "text": "{person}"} for clip in chosen]
    lines += [{"type": "job", "identity": clip["id"], "prompt": f"{clip['id']}-p"} for clip in chosen]
    (args.out / "suite").mkdir(exist_ok=True)
    write_text_atomic(args.out / "suite" / "suite.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    counts = ", ".join(f"{motion} {len(picked[motion])}" for motion in motions)
    print(f"{len(chosen)} clips ({counts}): {cache} ({len(index['items'])} items), {args.out / 'suite' / 'suite.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
