"""CurricularFace IR-101 (the face recogniser of the FaceSim-Cur metric), written for the released state dict
`glint360k_curricular_face_r101_backbone.bin`; parameter names follow that file so it loads strictly.

Architecture (an "improved residual" ResNet-101 for 112 x 112 faces):
    input_layer   conv3x3(3 -> 64, no bias), BN, PReLU
    body          49 bottleneck_IR units: 3 x 64, 13 x 128, 30 x 256, 3 x 512 channels; the first unit of each stage
                  has stride 2. Unit: BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN, plus a shortcut (a 1x1
                  max-pool with the stride when the width is kept, else conv1x1(stride) + BN).
    output_layer  BN2d(512), Dropout, Flatten, Linear(512*7*7 -> 512), BN1d(512, no affine)
Preprocessing (ConsisID protocol): the face aligned at 224 x 224 on the ArcFace template, resized to 112 x 112,
RGB, (x / 255 - 0.5) / 0.5. The embedding is compared by cosine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import MetricUnavailable, MetricWeightsError

STAGES = ((64, 3), (128, 13), (256, 30), (512, 3))


class BottleneckIR(nn.Module):
    def __init__(self, in_channels: int, depth: int, stride: int):
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IR101(nn.Module):
    def __init__(self, stages=STAGES):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        units, width = [], 64
        for depth, count in stages:
            for k in range(count):
                units.append(BottleneckIR(width, depth, 2 if k == 0 else 1))
                width = depth
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(width), nn.Dropout(0.4), nn.Flatten(), nn.Linear(width * 7 * 7, 512), nn.BatchNorm1d(512, affine=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(x)))


def load_curricularface(path: str | Path, device: str = "cpu", stages=STAGES) -> IR101:
    """IR-101 with the weights of `path`, loaded strictly: a file that does not fit names the mismatching keys.
    `stages` ((width, units) per stage) builds other depths of the same family (tests use a tiny one)."""
    path = Path(path)
    if not path.is_file():
        raise MetricUnavailable(f"CurricularFace weights {path} not found")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors all mean "not a readable state dict"
        raise MetricWeightsError(f"{path} is not a readable torch state dict ({err.__class__.__name__}: {err})") from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    with torch.device("meta"):  # no random init to overwrite: the file's tensors are assigned directly
        model = IR101(stages)
    try:
        result = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as err:  # size mismatches
        raise MetricWeightsError(f"{path} does not fit CurricularFace IR-101: {str(err).splitlines()[-1].strip()}") from err
    if result.missing_keys or result.unexpected_keys:
        raise MetricWeightsError(
            f"{path} is not a CurricularFace IR-101 state dict: {len(result.missing_keys)} missing keys "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})"
        )
    return model.eval().to(device)


def curricularface_input(crops_224: list[np.ndarray]) -> torch.Tensor:
    """224 x 224 aligned RGB crops -> the network's (N, 3, 112, 112) input in [-1, 1]."""
    import cv2

    small = np.stack([cv2.resize(c, (112, 112)) for c in crops_224]).astype(np.float32)
    return torch.from_numpy(small).permute(0, 3, 1, 2).div(255.0).sub(0.5).div(0.5)
