"""The procedural world: deterministic, captions that say what the clip shows, disjoint identity splits."""

from __future__ import annotations

import numpy as np
import pytest

from proteus_id.errors import UserError
from proteus_id.toyworld.captions import contrast_prompt, parse_identity_prompt, parse_prompt
from proteus_id.toyworld.traits import MOTIONS, SPLITS, identity_numbers, sample_identity
from proteus_id.toyworld.world import crop_face, make_clip, render_clip, render_reference


def test_same_seed_same_pixels_other_seed_other_person():
    a, b = render_clip(make_clip(1234, 3)), render_clip(make_clip(1234, 3))
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.person_masks, b.person_masks)
    assert make_clip(1234, 3).caption == make_clip(1234, 3).caption
    other_world = make_clip(1234, 3, world_seed=99)
    assert other_world.identity != make_clip(1234, 3).identity
    ref_a = np.asarray(render_reference(sample_identity(1234), 2))
    assert np.array_equal(ref_a, np.asarray(render_reference(sample_identity(1234), 2)))
    assert not np.array_equal(ref_a, np.asarray(render_reference(sample_identity(1234), 3)))


def test_clip_shapes_boxes_and_masks_agree():
    clip = render_clip(make_clip(1000, 0, motion="walk right", speed="fast"))
    assert clip.frames.shape == (17, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.person_masks.shape == clip.face_masks.shape == (17, 64, 64)
    # the face mask lies inside the person mask and inside the face box
    assert (clip.face_masks & ~clip.person_masks).sum() == 0
    for mask, (x0, y0, x1, y1) in zip(clip.face_masks, clip.face_boxes):
        ys, xs = np.nonzero(mask)
        assert xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
    # walking right moves the face right by many pixels
    centres = (clip.face_boxes[:, 0] + clip.face_boxes[:, 2]) / 2
    assert centres[-1] - centres[0] > 25


@pytest.mark.parametrize("motion", ["turn left", "nod", "move closer", "blink", "talk"])
def test_motions_change_the_frames_and_still_does_not(motion):
    moving = render_clip(make_clip(1500, 1, motion=motion, speed="fast")).frames.astype(int)
    still = render_clip(make_clip(1500, 1, motion="still")).frames.astype(int)
    assert np.abs(np.diff(still, axis=0)).max() == 0
    assert np.abs(np.diff(moving, axis=0)).sum(axis=(1, 2, 3)).max() > 1000


def test_captions_and_identity_prompts_read_back_as_the_traits():
    for number in range(1000, 1120):
        spec = make_clip(number, number % 3)
        scene = spec.scene.to_dict()
        expected = {k: scene[k] for k in ("garment", "clothes_colour", "hat", "background", "lighting", "motion", "speed")}
        if scene["hat"] != "none":
            expected["hat_colour"] = scene["hat_colour"]
        assert parse_prompt(spec.caption) == expected, spec.caption
        said = parse_identity_prompt(spec.identity_prompt)
        traits = spec.identity.to_dict()
        assert said["gender"] == traits["gender"] and said["hair_style"] == traits["hair_style"], spec.identity_prompt
        assert all(traits[k] == v for k, v in said.items()), (spec.identity_prompt, said)
        if traits["glasses"] != "none":
            assert said["glasses"] == traits["glasses"]
        if traits["beard"] != "none":
            assert said["beard"] == traits["beard"]


def test_wording_varies():
    captions = {make_clip(2000, k, motion="turn left", speed="slow").caption.split(" turn")[0] for k in range(30)}
    assert len(captions) > 10
    phrases = {parse_prompt(make_clip(2000 + k, 0).caption)["motion"] for k in range(200)}
    assert phrases == set(MOTIONS)


def test_splits_are_disjoint_and_eval_has_150():
    ranges = sorted(SPLITS.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
    assert identity_numbers("eval") == list(range(150))
    with pytest.raises(UserError):
        identity_numbers("nope")


def test_crop_of_a_frame_matches_the_reference_framing():
    spec = make_clip(1700, 0, motion="still")
    clip = render_clip(spec)
    crop = crop_face(clip.frames[0], clip.face_boxes[0], 64)
    assert crop.shape == (64, 64, 3)
    # the head is centred: the middle of the crop is skin-ish, like the reference crop's middle
    ref = np.asarray(render_reference(spec.identity, 0)).astype(int)
    skin = np.array(spec.identity.skin_rgb)
    assert np.abs(ref[30:34, 30:34].mean((0, 1)) - skin).max() < 80
    assert crop_face(clip.frames[0], [-500, -500, 900, 900], 16).shape == (16, 16, 3)  # wild boxes do not fail


def test_render_dataset_resumes_from_the_log_and_from_a_finished_manifest(tmp_path):
    import json

    from proteus_id.toyworld.dataset import render_dataset

    first = render_dataset(tmp_path, identities=2, clips_per_identity=1, progress=False)
    assert (first["rows"], first["written"], first["kept"]) == (2, 2, 0)
    assert not (tmp_path / "manifest.jsonl.partial").exists()  # the log is gone once the manifest holds every row
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert all((tmp_path / r["video"]).is_file() and (tmp_path / r["reference"]["image"]).is_file() for r in rows)

    # a finished run asked for one more identity renders only that one
    more = render_dataset(tmp_path, identities=3, clips_per_identity=1, progress=False)
    assert (more["rows"], more["written"], more["kept"]) == (3, 1, 2)

    # an interrupted run: only the log (with a line cut by the kill) and the first clip's files survive
    rows = (tmp_path / "manifest.jsonl").read_text().splitlines()
    (tmp_path / "manifest.jsonl").unlink()
    (tmp_path / "manifest.jsonl.partial").write_text(rows[0] + "\n" + rows[1][:40])
    resumed = render_dataset(tmp_path, identities=3, clips_per_identity=1, progress=False)
    assert (resumed["rows"], resumed["written"], resumed["kept"]) == (3, 2, 1)
    assert (tmp_path / "manifest.jsonl").read_text().splitlines() == rows  # same rows, same order


@pytest.mark.parametrize("kind", ["still", "opposite"])
def test_contrast_prompts_change_only_the_motion(kind):
    mirror = {"turn left": "turn right", "move closer": "move away", "walk left": "walk right"}
    mirror.update({b: a for a, b in mirror.items()})
    for number in range(1000, 1120):
        caption = make_clip(number, number % 3).caption
        asked, negative = parse_prompt(caption), contrast_prompt(caption, kind)
        said = parse_prompt(negative)
        want = mirror.get(asked["motion"], "still") if kind == "opposite" else "still"
        assert said["motion"] == want, (caption, negative)
        assert said["speed"] == (asked["speed"] if want != "still" else "normal"), (caption, negative)
        assert {k: v for k, v in said.items() if k not in ("motion", "speed")} == \
               {k: v for k, v in asked.items() if k not in ("motion", "speed")}, (caption, negative)
        if asked["motion"] == "still":
            assert negative == caption  # guidance against itself: none
    # the longest phrase is replaced whole, and the speed word goes with a motion that becomes still
    assert contrast_prompt("A man gently blinks his eyes in a park.", "still") == \
        "A man holds still, looking at the camera in a park."
    assert contrast_prompt("A man nods his head quickly in a park.", "opposite") == \
        "A man holds still, looking at the camera in a park."
    assert contrast_prompt("{person} rapidly looks away to the left.", "opposite") == "{person} rapidly looks away to the right."
    with pytest.raises(ValueError, match="contrast kind"):
        contrast_prompt("A man nods.", "reverse")


def test_motion_partners_are_the_same_clip_with_only_the_motion_changed(tmp_path):
    """The partner keeps the person, scene, per-clip randomness and wording; only the motion (and its phrase) change:
    the first frame of a turn and of its mirror is the same picture, and the background does not change."""
    import json

    from proteus_id.toyworld.dataset import motion_partner, render_dataset

    spec = make_clip(1000, 0, motion="turn left", speed="fast")
    partner = motion_partner(spec, "opposite")
    assert partner.scene.motion == "turn right" and partner.clip_id == spec.clip_id
    assert partner.caption == contrast_prompt(spec.caption, "opposite") != spec.caption
    assert {k: v for k, v in vars(partner.scene).items() if k != "motion"} == \
           {k: v for k, v in vars(spec.scene).items() if k != "motion"}
    clip, mirrored = render_clip(spec), render_clip(partner)
    np.testing.assert_array_equal(clip.frames[0], mirrored.frames[0])
    changed = np.abs(clip.frames[-1].astype(int) - mirrored.frames[-1]).max(axis=-1) > 8
    assert changed.sum() > 50  # the head, turned the other way (91 of the 4,096 pixels change by more than 8)
    background = ~(clip.person_masks | mirrored.person_masks)
    differs = (clip.frames[background] != mirrored.frames[background]).any(axis=-1)
    assert differs.mean() < 0.002  # only anti-aliased pixels at the mask's edge (34 of 41,643 here)
    assert motion_partner(make_clip(1000, 0, motion="smile"), "opposite").scene.motion == "still"
    assert motion_partner(make_clip(1000, 0, motion="walk right"), "still").scene.motion == "still"
    assert motion_partner(make_clip(1000, 0, motion="still"), "opposite") is None

    summary = render_dataset(tmp_path, identities=6, clips_per_identity=2, progress=False, contrast="opposite")
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    anchors = {s.clip_id: s for s in (make_clip(n, k) for n in identity_numbers("train", 6) for k in range(2))}
    still = sum(s.scene.motion == "still" for s in anchors.values())
    assert summary["skipped_still"] == still and summary["rows"] == len(rows) == 12 - still
    for row in rows:
        anchor = anchors[row["id"]]
        assert row["caption"] == contrast_prompt(anchor.caption, "opposite")
        assert row["identity_prompt"] == anchor.identity_prompt
        assert row["meta"]["scene"]["motion"] != anchor.scene.motion
