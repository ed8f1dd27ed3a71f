"""The funnel report: counts in and out of every stage, with the reasons for everything dropped (JSON + Markdown)."""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import write_text_atomic
from .task import STAGES

UNITS = {
    "probe": ("videos", "videos"),
    "shots": ("videos", "shots"),
    "windows": ("shots", "clip windows"),
    "faces": ("clips", "clips"),
    "motion": ("clips", "clips"),
    "reference": ("clips", "clips"),
    "masks": ("clips", "clips"),
    "captions": ("clips", "clips"),
    "dedup": ("clips", "clips"),
}


def build_funnel(results: list[dict], dedup: dict, ignored_files: int, config_fingerprint: str) -> dict:
    """Sum the per-video counts (in the fixed stage order) and add the dedup stage and the errors.

    A video whose task hit a bug (status "error") is listed under errors and left out of the stage counts.
    """
    finished = [r for r in results if r["status"] != "error"]
    stages = []
    for stage in STAGES[:-1]:
        total = {"stage": stage, "in": 0, "out": 0, "rejected": {}, "flagged": {}}
        for result in finished:
            counts = result["counts"][stage]
            total["in"] += counts["in"]
            total["out"] += counts["out"]
            for key in ("rejected", "flagged"):
                for reason, n in counts.get(key, {}).items():
                    total[key][reason] = total[key].get(reason, 0) + n
        stages.append(total)
    stages.append({"stage": "dedup", **dedup, "flagged": {}})
    for stage in stages:
        stage["unit_in"], stage["unit_out"] = UNITS[stage["stage"]]
        stage["rejected"] = dict(sorted(stage["rejected"].items()))
    errors = [{"video": r["name"], "error": r.get("error", "").strip().splitlines()[-1:]} for r in results if r["status"] == "error"]
    rejected_videos = [{"video": r["name"], **r["rejected"]} for r in results if r.get("rejected")]
    return {
        "config": config_fingerprint,
        "videos": len(results),
        "ignored_files": ignored_files,
        "stages": stages,
        "rejected_videos": rejected_videos,
        "errors": errors,
        "clips": stages[-1]["out"],
        "seconds_in_tasks": round(sum(r.get("seconds", 0.0) for r in results), 2),
    }


def write_funnel(funnel: dict, out_dir: Path) -> None:
    write_text_atomic(out_dir / "funnel.json", json.dumps(funnel, indent=2) + "\n")
    write_text_atomic(out_dir / "funnel.md", funnel_markdown(funnel))


def funnel_markdown(funnel: dict) -> str:
    lines = [
        "# Curation funnel",
        "",
        f"{funnel['videos']} videos in, {funnel['clips']} clips in the manifest "
        f"({funnel['ignored_files']} files ignored for their extension; config {funnel['config']}).",
        "",
        "| stage | in | out | dropped, by reason | flagged (kept) |",
        "|---|---:|---:|---|---|",
    ]
    for s in funnel["stages"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in s["rejected"].items()) or "-"
        flagged = ", ".join(f"{k}: {v}" for k, v in s["flagged"].items()) or "-"
        lines.append(f"| {s['stage']} | {s['in']} {s['unit_in']} | {s['out']} {s['unit_out']} | {reasons} | {flagged} |")
    if funnel["rejected_videos"]:
        lines += ["", "## Videos rejected whole", "", "| video | stage | reason | detail |", "|---|---|---|---|"]
        for r in funnel["rejected_videos"]:
            detail = r.get("detail", "").replace("|", "/")
            lines.append(f"| {r['video']} | {r['stage']} | {r['reason']} | {detail} |")
    if funnel["errors"]:
        lines += ["", "## Errors (bugs; these videos are retried on the next run)", ""]
        lines += [f"- {e['video']}: {' '.join(e['error'])}" for e in funnel["errors"]]
    return "\n".join(lines) + "\n"
