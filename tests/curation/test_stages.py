"""Each curation stage on its own, with numbers known in advance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from proteus_id.curation.config import CurateConfig, FaceConfig, MotionConfig, ReferenceConfig, WindowConfig, load_config
from proteus_id.curation.faces import SampledFrame
from proteus_id.errors import UserError


# ------------------------------------------------------------------ config


def test_shipped_yaml_equals_the_code_defaults():
    repo = Path(__file__).resolve().parents[2]
    assert load_config(repo / "configs" / "curate.yaml") == CurateConfig()


def test_config_rejects_unknown_keys_and_wrong_types(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("windows:\n  min_frame: 10\n")
    with pytest.raises(UserError, match="windows.min_frame"):
        load_config(bad)
    with pytest.raises(UserError, match="whole number"):
        load_config(None, {"windows": {"min_frames": 1.5}})
    with pytest.raises(UserError, match="min_frames <= max_frames"):
        load_config(None, {"windows": {"min_frames": 50, "max_frames": 49}})
    with pytest.raises(UserError, match="captions.csv"):
        load_config(None, {"captions": {"source": "csv"}})
    assert load_config(None, {"motion": {"min_motion": 0}}).motion.min_motion == 0.0  # ints accepted for floats


def test_config_paths_are_relative_to_the_yaml_and_empty_sections_take_overrides(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "captions.csv").write_text("id,caption,identity_prompt\n")
    (folder / "c.yaml").write_text("captions:\n  source: csv\n  csv: captions.csv\nmasks:\n")
    monkeypatch.chdir(tmp_path)  # not the YAML's folder
    config = load_config(folder / "c.yaml")
    assert Path(config.captions.csv) == folder / "captions.csv"
    config = load_config(folder / "c.yaml", {"masks": {"source": "box"}})  # onto the empty `masks:` section
    assert config.masks.source == "box"


def test_fingerprint_follows_settings_and_the_caption_csv(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("id,caption\nx,one\n")
    a = load_config(None, {"captions": {"source": "csv", "csv": str(csv)}})
    first = a.fingerprint()
    csv.write_text("id,caption\nx,two\n")
    assert a.fingerprint() != first
    assert CurateConfig().fingerprint() == CurateConfig().fingerprint()
    assert load_config(None, {"windows": {"stride_frames": 5}}).fingerprint() != CurateConfig().fingerprint()


# ------------------------------------------------------------------ probe


def _audio_only(path):
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_probe_rejects_broken_files_with_reasons(story_dir, tmp_path):
    from proteus_id.curation.config import ProbeConfig
    from proteus_id.curation.probe import VideoRejected, probe_video

    expected = {"empty.mp4": "empty_file", "notes.mp4": "not_a_video", "readme.txt": "not_a_video", "nothing.mp4": "missing"}
    for name, reason in expected.items():
        with pytest.raises(VideoRejected) as caught:
            probe_video(story_dir / name, ProbeConfig())
        assert (caught.value.stage, caught.value.reason) == ("probe", reason)
    with pytest.raises(VideoRejected, match="no_video_stream"):
        probe_video(_audio_only(tmp_path / "podcast.mp4"), ProbeConfig())
    info = probe_video(story_dir / "a_astronaut.mp4", ProbeConfig())
    assert (info.width, info.height, info.fps, info.frames, info.codec) == (320, 240, 8.0, 104, "h264")
    with pytest.raises(VideoRejected, match="too_small"):
        probe_video(story_dir / "a_astronaut.mp4", ProbeConfig(min_short_side=300))
    with pytest.raises(VideoRejected, match="too_short"):
        probe_video(story_dir / "short.mp4", ProbeConfig(min_duration_s=2.0))  # 12 frames at 8 fps = 1.5 s


# ------------------------------------------------------------------ shots and windows


def test_shot_detector_finds_the_three_hard_cuts():
    from proteus_id.curation.config import ShotConfig
    from proteus_id.curation.shots import ShotDetector
    from proteus_id.curation.synthetic import STORY_LENGTHS, story_frames

    frames = story_frames()
    for kind in ("content", "adaptive"):
        detector = ShotDetector(ShotConfig(detector=kind), fps=8.0)
        for i, frame in enumerate(frames):
            detector.add(i, frame)
        bounds = np.cumsum((0,) + STORY_LENGTHS).tolist()  # 0, 40, 60, 80, 104
        assert detector.shots(len(frames)) == list(zip(bounds[:-1], bounds[1:])), kind


def test_cuts_to_shots_and_windows():
    from proteus_id.curation.shots import cuts_to_shots
    from proteus_id.curation.windows import shot_windows

    assert cuts_to_shots([40, 0, 40, 200, 60], 100) == [(0, 40), (40, 60), (60, 100)]
    config = WindowConfig(min_frames=14, max_frames=18, shot_margin_frames=2)
    assert shot_windows((0, 40), config) == [(2, 20), (20, 38)]
    assert shot_windows((40, 60), config) == [(42, 58)]
    assert shot_windows((0, 17), config) == []  # 13 frames after the margins
    overlapping = WindowConfig(min_frames=10, max_frames=10, stride_frames=5, shot_margin_frames=0)
    assert shot_windows((0, 22), overlapping) == [(0, 10), (5, 15), (10, 20)]


# ------------------------------------------------------------------ faces and tracking


def _sample(index, boxes, embedding=None, sharpness=100.0, brightness=120.0):
    return SampledFrame(index, [list(b) for b in boxes], sharpness, brightness, embedding)


FACE = (100, 50, 160, 110, 1.2)  # 60 px face in a 320 x 240 frame: 0.25 of the short side
OTHER = (200, 60, 250, 110, 0.9)  # 50 px: 0.69 of FACE's area


def test_track_filters_give_one_reason_each():
    from proteus_id.curation.tracking import judge_track

    config, size = FaceConfig(), (320, 240)
    judge = lambda samples: judge_track(samples, size, config, stride=4)  # noqa: E731
    good = [_sample(i * 4, [FACE], [0.1] * 128) for i in range(5)]
    verdict = judge(good)
    assert verdict.ok and verdict.scores["face_size"] == 0.25 and verdict.scores["face_frames"] == 1.0
    assert verdict.mean_embedding == pytest.approx([0.1] * 128)
    assert judge([_sample(i * 4, [FACE] if i < 3 else []) for i in range(5)]).reason == "no_face"  # 3 of 5 < 0.8
    assert judge([_sample(i * 4, [FACE, OTHER]) for i in range(5)]).reason == "multiple_faces"
    tiny_other = (200, 60, 210, 70, 0.5)  # 1/36 of the main face: background, not a second person
    assert judge([_sample(i * 4, [FACE, tiny_other]) for i in range(5)]).ok
    jumped = [_sample(0, [FACE]), _sample(4, [(10, 50, 70, 110, 1.0)])]  # 90 px in one sample = 1.5 box sizes
    assert judge(jumped).reason == "track_break"
    switch = [_sample(0, [FACE], [0.0] * 128), _sample(4, [FACE], [0.2] * 128)]  # distances 0.1 * sqrt(128) = 1.13
    assert judge(switch).reason == "identity_switch"
    small = (100, 50, 115, 65, 1.0)  # 15 px: 0.0625 of the short side < 0.08
    assert judge([_sample(i * 4, [small]) for i in range(5)]).reason == "face_too_small"
    assert judge([_sample(i * 4, [FACE], sharpness=10.0) for i in range(5)]).reason == "blurry"
    assert judge([_sample(i * 4, [FACE], brightness=20.0) for i in range(5)]).reason == "too_dark"
    assert judge([_sample(i * 4, [FACE], brightness=240.0) for i in range(5)]).reason == "too_bright"


def test_boxes_are_interpolated_between_samples_and_grown_into_body_boxes():
    from proteus_id.curation.tracking import interpolate_boxes, person_box

    samples = [_sample(0, [(0, 0, 10, 10, 0.9)]), _sample(4, [(4, 0, 14, 10, 0.7)]), _sample(8, []), _sample(12, [])]
    boxes = interpolate_boxes(samples, 0, 10, max_gap=8)
    assert boxes[0] == [0, 0, 10, 10, 0.9]
    assert boxes[1] == [1.0, 0.0, 11.0, 10.0, 0.7]  # a quarter of the way; the lower confidence
    assert boxes[4] == [4, 0, 14, 10, 0.7]
    assert boxes[8] == [4, 0, 14, 10, 0.7]  # 4 frames from the last detection: within max_gap // 2
    assert boxes[9] is None
    body = person_box([100, 50, 160, 110, 1.2], (320, 240), width=3.0, top=0.5, height=7.0)
    assert body == [40.0, 20.0, 220.0, 240.0, 1.2]  # 180 wide, 30 px above, clipped at the bottom


def test_reference_comes_from_outside_the_window_and_is_the_same_person():
    from proteus_id.curation.reference import choose_reference

    me, stranger = [0.0] * 128, [0.1] * 128
    samples = [
        _sample(0, [FACE], stranger),  # best score would be here, but it is someone else
        _sample(4, [FACE], me),
        _sample(8, [FACE], me),  # inside the window
        _sample(12, [(100, 50, 170, 120, 1.5)], me),  # inside the window, higher score
        _sample(16, [FACE, OTHER], me),  # two faces: not a clean reference
        _sample(20, [(90, 40, 160, 110, 1.3)], me),  # outside, same person, best remaining score
    ]
    samples[0].boxes[0][4] = 2.0
    best, why = choose_reference(samples, (8, 16), me, (320, 240), ReferenceConfig(), FaceConfig())
    assert best.index == 20 and why == ""
    best, why = choose_reference(samples[:4], (4, 16), me, (320, 240), ReferenceConfig(), FaceConfig())
    assert best is None and "same person" in why


# ------------------------------------------------------------------ motion


def _texture(size=(96, 128), seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, size=(size[0] // 4, size[1] // 4, 3), dtype=np.uint8)
    return cv2.resize(noise, (size[1] * 2, size[0] * 2), interpolation=cv2.INTER_CUBIC)


def test_motion_meter_measures_a_known_pan_and_flags_still_and_chaotic():
    from proteus_id.curation.motion import MotionMeter, judge_motion, window_motion

    big = _texture()
    pan = [np.ascontiguousarray(big[40:136, 20 + 2 * t : 148 + 2 * t]) for t in range(9)]  # 2 px per frame
    meter = MotionMeter(MotionConfig(pairs_per_second=8.0), fps=8.0)  # every pair
    for i, frame in enumerate(pan):
        meter.add(i, frame)
    diagonal = np.hypot(96, 128)
    measured = window_motion(meter.scores, 0, 9)
    assert measured == pytest.approx(2.0 / diagonal * 8.0, rel=0.15)  # 0.1 diagonals per second
    assert sorted(meter.scores) == list(range(8))
    assert judge_motion(measured, MotionConfig())[0]

    meter = MotionMeter(MotionConfig(pairs_per_second=4.0), fps=8.0)  # pairs (0,1), (2,3), ...
    for i in range(9):
        meter.add(i, pan[0])
    assert sorted(meter.scores) == [0, 2, 4, 6] and max(meter.scores.values()) < 1e-3
    assert judge_motion(window_motion(meter.scores, 0, 9), MotionConfig())[1] == "still"

    shaky = MotionMeter(MotionConfig(pairs_per_second=8.0), fps=8.0)
    for i in range(6):
        offset = 10 * (i % 2)  # 10 px back and forth every frame: a shaking camera, 0.5 diagonals per second
        shaky.add(i, np.ascontiguousarray(big[40:136, 20 + offset : 148 + offset]))
    assert window_motion(shaky.scores, 0, 6) == pytest.approx(10 / diagonal * 8.0, rel=0.15)
    assert judge_motion(window_motion(shaky.scores, 0, 6), MotionConfig(max_motion=0.3))[1] == "chaotic"
    assert window_motion(meter.scores, 7, 8) is None


# ------------------------------------------------------------------ masks


def test_rle_matches_the_manifest_reader_and_round_trips():
    from proteus_id.curation.masks import box_mask, rle_decode, rle_encode
    from proteus_id.training.annotations import decode_rle

    mask = box_mask([1, 2, 3, 4, 0.9], (5, 4))  # rows 2-3, columns 1-2
    assert rle_encode(mask) == [7, 2, 3, 2, 6]  # column-major: 5 + 2 zeros, 2 ones, 3 zeros, 2 ones, 6 zeros
    full = np.ones((2, 3), bool)
    assert rle_encode(full) == [0, 6]
    rng = np.random.default_rng(0)
    random = rng.random((7, 9)) > 0.5
    assert np.array_equal(rle_decode(rle_encode(random), (7, 9)), random)
    assert np.array_equal(decode_rle([7, 9], rle_encode(random)).astype(bool), random)
    assert not box_mask(None, (3, 3)).any()


# ------------------------------------------------------------------ dedup


def test_near_duplicates_by_phash_keep_the_first():
    from proteus_id.curation.dedup import find_near_duplicates, frame_phash, hamming

    picture = _texture(seed=1)[:96, :128]
    same = frame_phash(picture, 8)
    import cv2

    rescaled = frame_phash(cv2.resize(picture, (100, 75), interpolation=cv2.INTER_AREA), 8)
    other = frame_phash(_texture(seed=2)[:96, :128], 8)
    assert hamming(same, rescaled) <= 6 < hamming(same, other)
    clips = [[same] * 3, [other] * 3, [rescaled] * 3, [same, same, other], []]
    assert find_near_duplicates(clips, 6) == {2: 0}
    assert hamming("ffffffffffffffff", "fffffffffffffff0") == 4


# ------------------------------------------------------------------ captions


def test_csv_captions_by_id_and_by_video_range(tmp_path):
    from proteus_id.curation.captions import ClipToCaption, CsvCaptioner

    csv = tmp_path / "captions.csv"
    csv.write_text(
        "id,video,start_frame,end_frame,caption,identity_prompt\n"
        "clip-1,,,,A woman smiles.,A woman with short brown hair.\n"
        ",talks/a.mp4,0,100,A man talks.,\n"
        ",talks/b.mp4,,,A woman walks.,A woman in a red coat.\n"
    )
    captioner = CsvCaptioner(str(csv))
    clip = lambda cid, video, start, end: ClipToCaption(cid, video, start, end, None, 0, [0, 0, 1, 1, 1])  # noqa: E731
    assert captioner(clip("clip-1", "x.mp4", 0, 10)) == ("A woman smiles.", "A woman with short brown hair.")
    assert captioner(clip("c2", "talks/a.mp4", 10, 59)) == ("A man talks.", None)
    assert captioner(clip("c3", "talks/a.mp4", 90, 139)) == (None, None)  # not inside the captioned range
    assert captioner(clip("c4", "talks/b.mp4", 500, 549)) == ("A woman walks.", "A woman in a red coat.")
    assert captioner(clip("c5", "other.mp4", 0, 49)) == (None, None)  # never made up
    bad = tmp_path / "bad.csv"
    bad.write_text("text\nhello\n")
    with pytest.raises(UserError, match="caption"):
        CsvCaptioner(str(bad))


# ------------------------------------------------------------------ discovery


def test_discover_folder_and_list(story_dir, tmp_path):
    from proteus_id.curation.runner import discover

    jobs, ignored = discover(story_dir, tmp_path / "out")
    assert [j.name for j in jobs] == ["a_astronaut.mp4", "b_reupload.mp4", "empty.mp4", "notes.mp4", "short.mp4", "truncated.mp4"]
    assert ignored == 1  # readme.txt
    assert jobs[0].manifest_path.endswith("/a_astronaut.mp4") and jobs[0].manifest_path.startswith("../")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my videos\n{story_dir / 'short.mp4'}\nmissing.mp4\n\nmissing.mp4\n")
    jobs, ignored = discover(listing, tmp_path / "out")
    assert [j.name for j in jobs] == sorted(["missing.mp4", (story_dir / "short.mp4").as_posix()])
    with pytest.raises(UserError, match="neither"):
        discover(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UserError, match="no video files"):
        discover(tmp_path / "empty_dir", tmp_path / "out")


def test_the_cnn_detector_finds_the_face_the_hog_detector_finds():
    from skimage import data

    from proteus_id.curation.faces import FaceDetector

    photo = data.astronaut()  # 512 px, the face ~90 px: both detectors without upsampling
    hog = FaceDetector(FaceConfig(detect_width=512, upsample=0)).detect(photo)
    cnn = FaceDetector(FaceConfig(detector="dlib-cnn", detect_width=512, upsample=0)).detect(photo)
    assert len(hog) == len(cnn) == 1
    a, b = hog[0], cnn[0]
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    assert inter / union > 0.6  # the CNN's boxes are a little larger and lower than the HOG's (0.69 here)
