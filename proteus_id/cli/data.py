"""`proteus-id data validate MANIFEST`: check every row of a training manifest (docs/manifest.md).

Prints one line per problem (`line N (id): error|warning: ...`), then totals. Exit 0 when no row has an error,
1 when some rows have errors (warnings alone, such as a row without a caption, do not fail).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    validate = sub.add_parser("validate", help="check every row: files, ranges, references, annotations")
    validate.add_argument("manifest", help="manifest .jsonl (format v1, docs/manifest.md)")
    validate.add_argument("--structure-only", action="store_true", help="check keys and types only; open no file")
    validate.add_argument("--report", metavar="JSON", help="also write the full report as JSON")
    validate.add_argument("--quiet", action="store_true", help="print the totals only")


def run(args: argparse.Namespace) -> int:
    from ..training.manifest import validate_manifest

    report = validate_manifest(args.manifest, check_files=not args.structure_only, progress=not args.quiet)
    if not args.quiet:
        for issue in report.issues:
            where = f"line {issue.line}" + (f" ({issue.id})" if issue.id else "")
            for message in issue.errors:
                print(f"{where}: error: {message}")
            for message in issue.warnings:
                print(f"{where}: warning: {message}")
    total = report.manifest.total_lines
    clean = total - report.rows_with_errors - report.rows_with_warnings
    print(
        f"{total} rows: {clean} clean, {report.rows_with_warnings} with warnings only, {report.rows_with_errors} with "
        f"errors ({report.num_errors} errors, {report.num_warnings} warnings); {report.trainable_rows} trainable"
    )
    if args.report:
        from ..atomic import write_json_atomic

        write_json_atomic(args.report, report.as_dict())
    return 0 if report.ok else 1
