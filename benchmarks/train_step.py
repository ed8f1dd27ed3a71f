"""Time per training step: features from the precomputed cache vs computed inside the step (the release's way).

Both variants run the same transformer update (spec.training_loss + backward + AdamW) on the same items at the same
size; the in-step variant first runs, for every item of the batch, what the release ran every step: decode the clip,
VAE-encode it and the face crop, encode caption and identity prompt, run the face backend on the reference and
optical flow for the AML weight (features.FeatureExtractor.compute, the very code precompute uses).

    python benchmarks/train_step.py                         tiny random model, synthetic clips, 64x64x9
    python benchmarks/train_step.py --size 96 --frames 17 --steps 10

The default face backend here is a cheap deterministic stand-in of the tiny model's sizes, so the in-step time
leaves out real face detection and embedding: the ratio printed is a lower bound of the cache's advantage.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


class StandInFaceBackend:
    """Deterministic features of the tiny model's sizes from the reference image (no face model involved)."""

    kind = "bench-standin"

    def __init__(self, clip_dim: int, vit_dim: int, num_states: int):
        g = torch.Generator().manual_seed(7)
        self.cond = torch.randn(clip_dim, 192, generator=g) / 14
        self.vit = [torch.randn(vit_dim, 3, generator=g) for _ in range(num_states)]

    def extract(self, image, name=None):
        from proteus_id.identity.features import IdentityFeatures

        pixels = np.asarray(image)
        side = min(pixels.shape[:2])
        crop = Image.fromarray(pixels[:side, :side]).resize((64, 64))
        x = torch.from_numpy(np.array(crop.resize((8, 8)))).float().flatten() / 255
        patches = torch.from_numpy(np.array(crop.resize((5, 2)))).float().reshape(10, 3) / 255
        return IdentityFeatures(torch.tanh(self.cond @ x)[None, None], [torch.tanh(patches @ v.T)[None] for v in self.vit],
                                face_crop=crop, kind=self.kind)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="frame height and width")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)

    from proteus_id.testing import make_tiny_model_folder
    from proteus_id.testing.tiny import TINY_TRANSFORMER_CONFIG as TINY
    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.data import CacheDataset, Collate
    from proteus_id.training.features import FeatureExtractor, FeatureSettings
    from proteus_id.training.manifest import read_manifest
    from proteus_id.training.precompute import run_precompute
    from proteus_id.training.spec import ProteusIDSpec
    from proteus_id.training.synthetic import make_synthetic_dataset

    work = Path(tempfile.mkdtemp(prefix="proteus-bench-"))
    model_dir = make_tiny_model_folder(work / "model")
    clips = args.batch * (args.steps + 2)
    manifest = make_synthetic_dataset(work / "data", num_clips=clips, height=args.size, width=args.size,
                                      clip_frames=args.frames, extra_frames=2)
    backend = StandInFaceBackend(TINY["FT_clip_dim"], TINY["FT_vit_dim"], TINY["FT_num_scale"])
    settings = FeatureSettings(model=str(model_dir), height=args.size, width=args.size, num_frames=args.frames,
                               frame_stride=1, dtype="fp32")
    t0 = time.perf_counter()
    run_precompute(manifest, work / "cache", settings, shard_size=16, face_backend=backend, progress=False)
    precompute_seconds = time.perf_counter() - t0

    config = TrainConfig(model=str(model_dir), output_dir=str(work / "run"))
    config.data.cache = str(work / "cache")
    spec = ProteusIDSpec(config, torch.device("cpu"))
    cache = FeatureCache(work / "cache")
    collate = Collate(cache.settings["max_text_length"], cache.null_text())
    dataset = CacheDataset(cache)
    rows = {row.id: row for row in read_manifest(manifest).rows}
    extractor = FeatureExtractor(settings, "cpu", face_backend=backend)

    def cached_batch(step):
        return collate([dataset[(step * args.batch + i) % len(dataset)] for i in range(args.batch)])

    def in_step_batch(step):
        items = []
        for i in range(args.batch):
            item_id = cache.items[(step * args.batch + i) % len(cache)].id
            tensors, _ = extractor.compute(rows[item_id])
            items.append({**tensors, "id": item_id})
        return collate(items)

    def run(make_batch) -> list[float]:
        model = spec.load_model()
        spec.set_trainable(model, "full")
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        rng = torch.Generator().manual_seed(0)
        times = []
        for step in range(args.steps + 2):
            start = time.perf_counter()
            batch = make_batch(step)
            loss, _ = spec.training_loss(model, batch, rng, model.config)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        return times[2:]

    cached = run(cached_batch)
    in_step = run(in_step_batch)
    c, s = statistics.median(cached), statistics.median(in_step)
    print(f"size {args.size}x{args.size}x{args.frames}, batch {args.batch}, {args.steps} timed steps, {args.threads} thread(s)")
    print(f"precompute: {precompute_seconds:.2f} s for {clips} clips ({precompute_seconds / clips:.3f} s/clip, includes model loading)")
    print(f"step from the cache:          median {c * 1000:8.1f} ms  (min {min(cached) * 1000:.1f})")
    print(f"step with features in-step:   median {s * 1000:8.1f} ms  (min {min(in_step) * 1000:.1f})")
    print(f"ratio in-step / cache: {s / c:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
