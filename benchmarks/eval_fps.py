"""Frames per second of each evaluation metric on this machine, on a 49-frame 480 x 720 video made from
skimage's astronaut (panned and zoomed, so faces and motion are real).

Networks whose released weights are not available offline (CLIP ViT-B/32, CurricularFace IR-101, InceptionV3) are
timed with random weights of the same architecture: speed depends on the architecture, not the weights. ArcFace
(glintr100.onnx) is not timed: its graph comes only with the weights. Each metric is timed warm (models loaded,
one untimed run first) on a fresh video cache, so shared work (face detection, flow) is counted where it is first
needed: face_detection includes detection; facesim_* and fid reuse the detections.

    OMP_NUM_THREADS=2 python benchmarks/eval_fps.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_video(folder: Path, frames: int = 49, height: int = 480, width: int = 720) -> tuple[Path, Path]:
    from PIL import Image
    from skimage import data

    from proteus_id.pipeline.video import write_video

    image = data.astronaut()
    Image.fromarray(image).save(folder / "ref.png")
    out = []
    for t in np.linspace(0, 1, frames):
        side = int(512 * (1 - 0.25 * t))
        left, top = int((512 - side) * t), int((512 - side) * 0.3 * t)
        crop = Image.fromarray(image[top : top + side, left : left + side])
        canvas = Image.new("RGB", (width, height), (20, 20, 30))
        canvas.paste(crop.resize((height, height)), ((width - height) // 2, 0))
        out.append(np.asarray(canvas))
    return write_video(np.stack(out), folder / "pan.mp4", fps=8), folder / "ref.png"


def random_weight_files(folder: Path) -> dict[str, Path]:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from proteus_id.evaluation.metrics.curricularface import IR101
    from proteus_id.evaluation.metrics.inception import InceptionV3Features
    from proteus_id.testing import make_tiny_tokenizer

    torch.manual_seed(0)
    files = {"curricularface": folder / "cur.bin", "inception": folder / "pt_inception-random.pth", "clip": folder / "clip"}
    torch.save(IR101().state_dict(), files["curricularface"])
    torch.save(InceptionV3Features(fid_variant=True).state_dict(), files["inception"])
    CLIPModel(CLIPConfig()).save_pretrained(files["clip"])  # CLIPConfig's defaults are ViT-B/32's shapes
    make_tiny_tokenizer().save_pretrained(files["clip"])  # tokenisation time is negligible next to the networks
    CLIPImageProcessor().save_pretrained(files["clip"])  # 224 px, CLIP's mean/std
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    from proteus_id.evaluation.config import EvalConfig
    from proteus_id.evaluation.manifest import EvalRow
    from proteus_id.evaluation.runner import build_metrics
    from proteus_id.evaluation.video import load_video

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video_path, ref = make_video(folder)
        weights = random_weight_files(folder)
        config = EvalConfig(curricularface=weights["curricularface"], inception=weights["inception"], clip=weights["clip"],
                            metrics=["face_detection", "facesim_dlib", "facesim_cur", "clipscore", "fid", "motion"])
        metrics, skipped = build_metrics(config)
        row = EvalRow(index=0, video=video_path, image=ref, prompt="a woman in a space suit smiles, the camera pans")

        t = time.perf_counter()
        video = load_video(video_path, config.sample_frames)
        decode_s = time.perf_counter() - t
        frames_total, sampled = video.num_frames, len(video.sampled_indices)
        print(f"video: {frames_total} frames {video.size[0]}x{video.size[1]}, {sampled} sampled per metric protocol; "
              f"torch threads {torch.get_num_threads()}")
        print(f"{'stage':18s} {'frames':>6s} {'s/video':>8s} {'frames/s':>9s} {'x decode':>9s}")
        print(f"{'decode (PyAV)':18s} {frames_total:6d} {decode_s:8.3f} {frames_total / decode_s:9.1f} {1.0:9.2f}")
        timings = {m.name: [] for m in metrics}
        for repeat in range(args.repeats + 1):
            video = load_video(video_path, config.sample_frames)  # fresh cache: detection and flow are recomputed
            for metric in metrics:
                t = time.perf_counter()
                metric.compute(video, row)
                metric.collect(video, row)
                if repeat:  # the first pass warms up (model loading, first calls)
                    timings[metric.name].append(time.perf_counter() - t)
        total = 0.0
        for metric in metrics:
            seconds = float(np.median(timings[metric.name]))
            total += seconds
            frames = frames_total if metric.name == "motion" else sampled
            print(f"{metric.name:18s} {frames:6d} {seconds:8.3f} {frames / seconds:9.1f} {seconds / decode_s:9.2f}")
        print(f"{'all of the above':18s} {'':6s} {total + decode_s:8.3f}   -> {3600 / (total + decode_s):.0f} videos per hour "
              f"per process; 600 videos (150 x 4) take {600 * (total + decode_s) / 3600:.1f} h")
        for name, reason in skipped.items():
            print(f"not timed: {name}: {reason}")
        print("not timed: facesim_arc (glintr100.onnx comes only with its weights)")


if __name__ == "__main__":
    main()
