"""`proteus-id bench` with the image-condition latent zeroed: the same command line, one change inside the pipeline.

    python benchmarks/toy_bench_without_face_latent.py bench --model ROOT/trained/full_s4000 --suite SUITE --out OUT ...

A diagnostic for the toy model (docs/toyworld.md, "Why the prompted motion is not recognised"): the face crop in
latent frame 0 is replaced by zeros, the input the model saw in the 5% of training steps that drop it
(`conditioning.image_dropout`). Compare OUT with a normal bench of the same suite (`benchmarks/toy_motion_tracks.py
OUT_NORMAL OUT`) to see what the face latent contributes to identity and whether it holds the person still.
"""

from __future__ import annotations

import sys

import torch

from proteus_id.cli.main import main
from proteus_id.pipeline.pipeline import ProteusIDPipeline

_with_face_latent = ProteusIDPipeline.prepare_image_latents


def _zeroed(self, *args, **kwargs) -> torch.Tensor:
    # encode as usual (same generator draws, so the rest of the sampling is unchanged), then drop the result
    return torch.zeros_like(_with_face_latent(self, *args, **kwargs))


if __name__ == "__main__":
    ProteusIDPipeline.prepare_image_latents = _zeroed
    raise SystemExit(main(sys.argv[1:]))
