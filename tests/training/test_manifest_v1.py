"""Manifest v1: the validator reports each kind of problem on the right row, exit codes follow the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from proteus_id.cli.main import main
from proteus_id.training.annotations import body_box_from_face, boxes_to_masks, decode_rle, encode_rle
from proteus_id.training.manifest import read_manifest, validate_manifest
from proteus_id.training.synthetic import make_synthetic_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("manifest"), num_clips=3, height=32, width=48)


def _rewrite(manifest, out, edits):
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    lines = []
    for i, row in enumerate(rows):
        edit = edits.get(i)
        lines.append(edit(row) if callable(edit) else json.dumps(row))
    out.write_text("\n".join(lines) + "\n")
    return out


def test_rle_round_trip_and_column_major_order():
    mask = np.zeros((3, 4), bool)
    mask[0, 1] = mask[2, 3] = mask[1, 1] = True
    counts = encode_rle(mask)
    # column-major: column 0 all zero (3), column 1 = [1, 1, 0] -> run of 3 zeros, then 2 ones, ...
    assert counts[:3] == [3, 2, 6]
    assert (decode_rle([3, 4], counts) == mask).all()
    assert encode_rle(np.ones((2, 2), bool)) == [0, 4]


def test_box_masks_and_body_fallback():
    masks = boxes_to_masks([(1, 1, 3, 2, 0.9), None], height=4, width=5)
    assert masks[0].sum() == 2 and masks[1].sum() == 0
    body = body_box_from_face((10, 10, 20, 24, 0.9), height=100, width=100)
    assert body == (0.0, 3.0, 30.0, 100.0, 0.9)


def test_clean_manifest_validates(dataset):
    report = validate_manifest(dataset)
    assert report.ok and report.trainable_rows == 3 and not report.issues
    assert main(["data", "validate", str(dataset), "--quiet"]) == 0


def test_each_problem_is_reported_on_its_row(dataset, tmp_path, capsys):
    def missing_video(r):
        r["video"] = "videos/nope.mp4"
        return json.dumps(r)

    def no_caption_and_outside_range(r):
        r["caption"] = None
        return json.dumps(r)

    def past_the_end(r):
        r["end_frame"], r["start_frame"] = 40, 31
        r.pop("annotations")
        r["reference"] = {"image": "faces/missing.png"}
        return json.dumps(r)

    bad = _rewrite(dataset, tmp_path / "bad.jsonl", {0: missing_video, 1: no_caption_and_outside_range, 2: past_the_end})
    with bad.open("a") as f:
        f.write("{not json\n")
    (tmp_path / "videos").symlink_to(dataset.parent / "videos")
    report = validate_manifest(bad)
    by_line = {i.line: i for i in report.issues}
    assert "does not exist" in by_line[1].errors[0]
    assert not by_line[2].errors and "not trainable" in by_line[2].warnings[0]
    assert any("outside the video (12 frames)" in e for e in by_line[3].errors)
    assert any("reference image" in e and "does not exist" in e for e in by_line[3].errors)
    assert "not valid JSON" in by_line[4].errors[0]
    assert report.rows_with_errors == 3 and report.rows_with_warnings == 1 and report.trainable_rows == 0
    assert main(["data", "validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "line 2 (clip_001): warning: no caption" in out
    assert "4 rows: 0 clean, 1 with warnings only, 3 with errors" in out


def test_structure_errors_need_no_files(tmp_path):
    rows = [
        {"version": 2, "id": "a", "video": "v.mp4", "start_frame": 0, "end_frame": 5, "fps": 8, "caption": "x",
         "identity_prompt": "y", "reference": {"frame": 2}},
        {"version": 1, "id": "b", "video": "v.mp4", "start_frame": 5, "end_frame": 5, "fps": 0, "caption": "x",
         "identity_prompt": "y", "reference": {"frame": 9}, "annotations": {"face_boxes": [[1, 2, 0, 3, 0.9]]}},
        {"version": 1, "id": "c", "video": "v.mp4", "start_frame": 0, "end_frame": 1, "fps": 8, "caption": "x",
         "identity_prompt": "y", "reference": {"image": "r.png"}, "extra": 1},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = read_manifest(path)
    assert [r.id for r in manifest.rows] == ["c"]
    issues = {i.line: i for i in manifest.issues}
    assert any("'version' must be 1" in e for e in issues[1].errors)
    assert any("inside the clip" in e for e in issues[1].errors)
    assert any("empty clip" in e for e in issues[2].errors) and any("'fps'" in e for e in issues[2].errors)
    assert any("unknown key 'extra'" in w for w in issues[3].warnings)
    assert main(["data", "validate", str(tmp_path / "absent.jsonl")]) == 2


def test_png_masks_load_and_missing_files_are_errors(dataset, tmp_path):
    from PIL import Image

    from proteus_id.training.annotations import load_masks

    masks = np.zeros((9, 32, 48), np.uint8)
    masks[:, 4:10, 5:20] = 255
    masks[3, 0, 0] = 255
    (tmp_path / "m").mkdir()
    paths = []
    for i, m in enumerate(masks):
        Image.fromarray(m).save(tmp_path / "m" / f"{i:03d}.png")
        paths.append(f"m/{i:03d}.png")
    loaded = load_masks({"format": "png", "paths": paths}, tmp_path, [0, 3, 8])
    assert loaded.shape == (3, 32, 48) and (loaded == (masks[[0, 3, 8]] > 0)).all()

    def with_png_masks(row, missing):
        row["annotations"]["person_masks"] = {"format": "png", "paths": paths[:-1] + (["m/gone.png"] if missing else paths[-1:])}
        return json.dumps(row)

    (tmp_path / "videos").symlink_to(dataset.parent / "videos")
    good = _rewrite(dataset, tmp_path / "good.jsonl", {0: lambda r: with_png_masks(r, False)})
    assert validate_manifest(good).ok
    bad = _rewrite(dataset, tmp_path / "bad.jsonl", {0: lambda r: with_png_masks(r, True)})
    report = validate_manifest(bad)
    assert report.rows_with_errors == 1 and "1 mask file(s) missing" in report.issues[0].errors[0]


def test_malformed_run_lengths_are_a_row_error_not_a_crash(dataset, tmp_path, capsys):
    """Counts that are not integers (a string, a null) are reported on their row; the validator keeps going."""
    from proteus_id.training.annotations import AnnotationError, load_masks

    def bad_counts(value):
        def edit(row):
            row["annotations"]["person_masks"]["counts"][0] = value
            return json.dumps(row)
        return edit

    (tmp_path / "videos").symlink_to(dataset.parent / "videos")
    bad = _rewrite(dataset, tmp_path / "bad.jsonl", {0: bad_counts("abc"), 1: bad_counts([1, None])})
    report = validate_manifest(bad)
    assert report.rows_with_errors == 2 and report.trainable_rows == 1
    assert all("run-length counts" in i.errors[0] for i in report.issues)
    assert main(["data", "validate", str(bad)]) == 1
    assert "line 1 (clip_000): error: annotations.person_masks frame 0" in capsys.readouterr().out
    with pytest.raises(AnnotationError, match="clip frame 0"):  # precompute counts it as a failed row
        load_masks({"format": "rle", "size": [2, 2], "counts": ["abc"]}, tmp_path, [0], key="annotations.person_masks")
