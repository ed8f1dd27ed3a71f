"""`toy subset`: the face-level motion clips and every N-th body-motion clip, rows copied unchanged."""

import json

import pytest

from proteus_id.errors import UserError
from proteus_id.toyworld.captions import parse_prompt
from proteus_id.toyworld.dataset import motion_subset
from proteus_id.toyworld.traits import BODY_MOTIONS, identity_numbers
from proteus_id.toyworld.world import make_clip


def _manifest(tmp_path, clips=40):
    rows = []
    for number in identity_numbers("train", clips // 2):
        for k in range(2):
            spec = make_clip(number, k)
            rows.append({"version": 1, "id": spec.clip_id, "video": f"videos/{spec.clip_id}.mp4", "caption": spec.caption})
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def test_keeps_face_level_clips_and_every_nth_body_clip(tmp_path):
    path, rows = _manifest(tmp_path)
    body = [r for r in rows if parse_prompt(r["caption"])["motion"] in BODY_MOTIONS]
    face = [r for r in rows if parse_prompt(r["caption"])["motion"] not in BODY_MOTIONS]
    assert len(body) >= 6 and face  # the world's motion mix gives both kinds in 40 clips

    summary = motion_subset(path, "subset.jsonl", body_every=3)
    written = [json.loads(line) for line in (tmp_path / "subset.jsonl").read_text().splitlines()]
    expected = [r for r in rows if r in face or (r in body and (body.index(r) + 1) % 3 == 0)]
    assert written == expected  # manifest order, rows unchanged
    assert summary["rows"] == len(expected) == len(face) + len(body) // 3
    assert sum(summary["dropped"].values()) == len(body) - len(body) // 3
    assert motion_subset(path, "all.jsonl", body_every=1)["rows"] == len(rows)


@pytest.mark.parametrize("name, every", [("manifest.jsonl", 2), ("../x.jsonl", 2), ("subset.txt", 2), ("s.jsonl", 0)])
def test_refuses_bad_arguments(tmp_path, name, every):
    path, _ = _manifest(tmp_path, clips=4)
    with pytest.raises(UserError):
        motion_subset(path, name, body_every=every)


def test_a_row_without_caption_is_a_user_error(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(UserError, match="line 1"):
        motion_subset(path, "s.jsonl", body_every=2)
