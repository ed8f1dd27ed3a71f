"""report.md (tables a reader can paste) and report.html (one file: tables, plots and contact sheets inline)."""

from __future__ import annotations

import base64
import html
import math
from collections import defaultdict
from typing import Any

import numpy as np

from ..store import RowStore, atomic_write_text
from . import plots

MAX_GROUP_LEVELS = 12
HEADLINE = ("facesim_arc", "facesim_cur", "facesim_dlib", "clipscore", "face_detection_rate", "dynamic_degree",
            "flow_magnitude", "motion_smoothness", "temporal_flicker")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.{digits}g}"


def _arrow(direction: bool | None) -> str:
    return {True: "↑", False: "↓"}.get(direction, "")


def summary_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for column, stats in summary["metrics"].items():
        if stats.get("n", 0) == 0:
            rows.append([column + _arrow(stats.get("higher_is_better")), "0", "–", "–", "–"])
            continue
        lo, hi = stats["ci95"]
        rows.append([column + _arrow(stats.get("higher_is_better")), str(stats["n"]), _fmt(stats["mean"]),
                     _fmt(stats["std"]), f"[{_fmt(lo)}, {_fmt(hi)}]"])
    return rows


def group_tables(records: list[dict[str, Any]], columns: list[str]) -> dict[str, list[list[str]]]:
    """Mean of the headline metrics per value of each extra manifest key with 2-12 distinct values
    (prompt category, gender, region, ...)."""
    ok = [r for r in records if r["status"] == "ok"]
    keys: dict[str, set] = defaultdict(set)
    for r in ok:
        for k, v in r.get("extra", {}).items():
            if isinstance(v, (str, int, bool)) and v != "":
                keys[k].add(v)
    shown = [c for c in HEADLINE if c in columns] or columns[:6]
    tables = {}
    for key, levels in keys.items():
        if not 2 <= len(levels) <= MAX_GROUP_LEVELS:
            continue
        table = [[key, "n", *shown]]
        for level in sorted(levels, key=str):
            members = [r for r in ok if r.get("extra", {}).get(key) == level]
            cells = []
            for c in shown:
                vals = [r["metrics"][c] for r in members if r["metrics"].get(c) is not None]
                cells.append(_fmt(float(np.mean(vals))) if vals else "–")
            table.append([str(level), str(len(members)), *cells])
        tables[key] = table
    return tables


def _md_table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(summary: dict[str, Any], records: list[dict[str, Any]], columns: list[str]) -> str:
    c = summary["counts"]
    parts = [
        "# Proteus-ID evaluation",
        "",
        f"Manifest: `{summary['manifest']}`. Rows: {c['rows']} ({c['ok']} ok, {c['failed']} failed); "
        f"{c['evaluated_this_run']} evaluated in this run, {c['reused_from_earlier_runs']} reused from earlier runs.",
        f"Frames per video: {summary['config']['sample_frames']}, sampled uniformly. Intervals: {summary['interval']}.",
        "",
        "## Metrics (over videos; ↑ higher is better, ↓ lower is better)",
        "",
        _md_table(summary_rows(summary), ["metric", "n", "mean", "std", "95% CI"]),
        "",
    ]
    if summary["set_level"]:
        parts += ["## Set-level", ""]
        parts += [f"- {k}: {_fmt(v) if not isinstance(v, str) else v}" for k, v in summary["set_level"].items()]
        parts.append("")
    if summary["skipped_metrics"]:
        parts += ["## Skipped metrics (no number is reported for these)", ""]
        parts += [f"- **{k}**: {v}" for k, v in summary["skipped_metrics"].items()]
        parts.append("")
    if summary["metrics_used"]:
        parts += ["## Metrics used", ""]
        for name, info in summary["metrics_used"].items():
            extra = ", ".join(f"{k}: `{v}`" for k, v in info.items() if k != "description")
            parts.append(f"- **{name}**: {info.get('description', '')}{' (' + extra + ')' if extra else ''}")
        parts.append("")
    for key, table in group_tables(records, columns).items():
        parts += [f"## By {key}", "", _md_table(table[1:], table[0]), ""]
    if summary["failed_rows"]:
        parts += ["## Failed rows", ""]
        parts += [f"- row {r['index']} `{r['video']}`: {r['reason']}" for r in summary["failed_rows"]]
        parts.append("")
    parts.append("Per-video numbers: `per_video.csv`; contact sheets and plots: `report.html`.")
    return "\n".join(parts) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:0.9em}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f3f5f8}td:first-child,th:first-child{text-align:left}.muted{color:#777}.bad{color:#b22}
.video{margin:14px 0;padding:8px;border:1px solid #e4e4e4;border-radius:6px}.video img{max-width:100%;display:block}
.kv{font-size:0.85em;color:#333;margin-top:4px}.kv span{margin-right:14px;white-space:nowrap}
img.plot{max-width:100%;margin:6px 0}
"""


def _html_table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(data: bytes, mime: str, css: str = "", alt: str = "") -> str:
    return f'<img class="{css}" alt="{html.escape(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode()}">'


def html_page(summary: dict[str, Any], records: list[dict[str, Any]], store: RowStore, columns: list[str]) -> str:
    c = summary["counts"]
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Proteus-ID evaluation</title><style>{_CSS}</style></head><body>",
           "<h1>Proteus-ID evaluation</h1>",
           f"<p>Manifest <code>{html.escape(summary['manifest'])}</code>: {c['rows']} rows, <b>{c['ok']} ok</b>, "
           f"<span class='{'bad' if c['failed'] else ''}'>{c['failed']} failed</span>; {c['evaluated_this_run']} evaluated "
           f"in this run, {c['reused_from_earlier_runs']} reused. {summary['config']['sample_frames']} frames sampled per video. "
           f"<span class='muted'>{html.escape(summary['interval'])}.</span></p>",
           "<h2>Metrics</h2><p class='muted'>↑ higher is better, ↓ lower is better.</p>",
           _html_table(summary_rows(summary), ["metric", "n", "mean", "std", "95% CI"])]
    if summary["set_level"]:
        out.append("<h2>Set-level</h2>" + _html_table(
            [[k, v if isinstance(v, str) else _fmt(v)] for k, v in summary["set_level"].items()], ["quantity", "value"]))
    if summary["skipped_metrics"]:
        out.append("<h2>Skipped metrics</h2><p>No number is reported for these:</p><ul>" + "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in summary["skipped_metrics"].items()) + "</ul>")
    figures = [plots.distributions(records, columns)]
    curves = {}
    for r in records:
        if r["status"] == "ok":
            per_frame = store.load_arrays(r["key"]).get("facesim_dlib/per_frame")
            if per_frame is not None:
                curves[str(r["index"])] = per_frame
    figures.append(plots.identity_over_time(curves))
    for x, y in (("flow_magnitude", "facesim_dlib"), ("flow_magnitude", "facesim_arc"), ("clipscore", "facesim_dlib")):
        if x in columns and y in columns:
            figures.append(plots.scatter(records, x, y))
    figures = [f for f in figures if f]
    if figures:
        out.append("<h2>Plots</h2>" + "".join(_img(f, "image/png", "plot") for f in figures))
    for key, table in group_tables(records, columns).items():
        out.append(f"<h2>By {html.escape(key)}</h2>" + _html_table(table[1:], table[0]))
    if summary["failed_rows"]:
        out.append("<h2>Failed rows</h2><ul>" + "".join(
            f"<li>row {r['index']} <code>{html.escape(str(r['video']))}</code>: {html.escape(str(r['reason']))}</li>"
            for r in summary["failed_rows"]) + "</ul>")
    out.append("<h2>Videos</h2><p class='muted'>Reference photo, then frames from the sampled ones: green box = face "
               "found (with its FaceSim-dlib), red frame = no face.</p>")
    for r in records:
        sheet = store.sheet_path(r["key"])
        body = [f"<div class='video'><b>#{r['index']}</b> <code>{html.escape(str(r['video']))}</code>"]
        if r.get("prompt"):
            body.append(f"<div class='muted'>{html.escape(r['prompt'])}</div>")
        if r["status"] != "ok":
            body.append(f"<div class='bad'>failed: {html.escape(str(r['reason']))}</div>")
        elif sheet.is_file():
            body.append(_img(sheet.read_bytes(), "image/jpeg", alt=f"contact sheet of row {r['index']}"))
        values = [f"<span>{html.escape(k)}: <b>{_fmt(v)}</b></span>" for k, v in r.get("metrics", {}).items()]
        notes = [f"<span class='muted'>{html.escape(k)}: {html.escape(v)}</span>" for k, v in r.get("notes", {}).items()]
        if values or notes:
            body.append("<div class='kv'>" + " ".join(values + notes) + "</div>")  # spaces: the line may wrap
        out.append("".join(body) + "</div>")
    out.append("</body></html>")
    return "\n".join(out)


def write_reports(summary: dict[str, Any], records: list[dict[str, Any]], store: RowStore, columns: list[str]) -> None:
    atomic_write_text(store.root / "report.md", markdown(summary, records, columns))
    atomic_write_text(store.root / "report.html", html_page(summary, records, store, columns))
