"""The released pipeline's output on the golden tiny folder, reproduced through our public API."""

from __future__ import annotations

import inspect
import json

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from proteus_id import ProteusIDPipeline


def call_arguments(call: dict, tensors: dict, pipe) -> dict:
    """pipeline_call.json -> keyword arguments of our pipeline, whatever the folder's config: every key the call
    names that our pipeline accepts is passed through (so another folder's call, e.g. with a list of prompts or
    num_videos_per_prompt, is followed too), `seed` becomes the generator, and the face features are every
    `id_vit_hidden.<k>` of the file in order."""
    accepted = set(inspect.signature(pipe.__call__).parameters)
    unknown = set(call) - accepted - {"seed"}
    assert not unknown, f"pipeline_call.json names arguments our pipeline does not take: {sorted(unknown)}"
    args = {k: v for k, v in call.items() if k in accepted}
    scales = sorted(int(k.rsplit(".", 1)[1]) for k in tensors if k.startswith("id_vit_hidden."))
    args.update(
        generator=torch.Generator().manual_seed(call["seed"]),
        id_cond=tensors["id_cond"],
        id_vit_hidden=[tensors[f"id_vit_hidden.{k}"] for k in scales],
        output_type="np",
    )
    return args


def test_pipeline_reproduces_release_frames(golden):
    root = golden / "official_tiny_pipeline"
    call = json.loads((root / "pipeline_call.json").read_text())
    tensors = load_file(str(root / "pipeline_call.safetensors"))
    # model_index.json there names the authors' module path for the transformer: found by folder instead
    pipe = ProteusIDPipeline.from_pretrained(root / "pipeline")
    frames = pipe(image=Image.open(root / "face.png").convert("RGB"), **call_arguments(call, tensors, pipe)).frames
    expected = tensors["expected.frames"].numpy()
    if expected.ndim == 4:  # (frames, H, W, 3): one video
        expected = expected[None]
    assert frames.shape == expected.shape
    assert np.abs(frames - expected).max() < 1e-4


def test_call_arguments_follow_the_call_file():
    class Pipe:
        def __call__(self, image, prompt=None, num_videos_per_prompt=1, id_cond=None, id_vit_hidden=None,
                     generator=None, output_type="pil"):
            pass

    tensors = {"id_cond": torch.zeros(1, 1, 2), **{f"id_vit_hidden.{k}": torch.full((1, 1, 1), float(k)) for k in (1, 0, 2)}}
    args = call_arguments({"prompt": ["a", "b"], "num_videos_per_prompt": 2, "seed": 0}, tensors, Pipe())
    assert args["prompt"] == ["a", "b"] and args["num_videos_per_prompt"] == 2
    assert [h.item() for h in args["id_vit_hidden"]] == [0, 1, 2]
    assert args["generator"].initial_seed() == 0
