"""Stand-ins for the released face models, with the same inputs and outputs (no real weights exist here).

ONNX files (loaded through the real insightface model zoo on onnxruntime):
    scrfd stand-in     input (1, 3, 640, 640) -> 9 outputs: scores (N_s, 1), box distances (N_s, 4), keypoint
                       offsets (N_s, 10) for strides 8, 16, 32 with 2 anchors per cell (SCRFD-10G's layout);
                       constant outputs that place the faces given to it (in the 640 x 640 detector frame)
    arcface stand-in   input (1, 3, 112, 112) -> (1, 512): 8 x 8 average pooling, then a fixed random matrix
torch stand-ins: RetinaFace (detect_faces), BiSeNet (19-label logits), EVA02 visual tower (hidden states at the
block inputs of depth 4, 8, 12, 16, 20).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

DET = 640
STRIDES = (8, 16, 32)


def scrfd_outputs(faces: list[tuple[np.ndarray, np.ndarray, float]]) -> list[np.ndarray]:
    """Constant SCRFD outputs for faces given as (box (4,), keypoints (5, 2), score) in the 640 frame; each face sits
    on the stride-32 anchor nearest its box centre."""
    scores = {s: np.zeros(((DET // s) ** 2 * 2, 1), np.float32) for s in STRIDES}
    boxes = {s: np.zeros(((DET // s) ** 2 * 2, 4), np.float32) for s in STRIDES}
    kps = {s: np.zeros(((DET // s) ** 2 * 2, 10), np.float32) for s in STRIDES}
    stride, cells = 32, DET // 32
    for box, points, score in faces:
        col = int(round((box[0] + box[2]) / 2 / stride))
        row = int(round((box[1] + box[3]) / 2 / stride))
        cx, cy = col * stride, row * stride
        index = (row * cells + col) * 2
        scores[stride][index] = score
        boxes[stride][index] = np.array([cx - box[0], cy - box[1], box[2] - cx, box[3] - cy]) / stride
        kps[stride][index] = ((np.asarray(points) - [cx, cy]) / stride).ravel()
    return [scores[s] for s in STRIDES] + [boxes[s] for s in STRIDES] + [kps[s] for s in STRIDES]


def write_scrfd(path: Path, faces) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    outputs = scrfd_outputs(faces)
    names = [f"{kind}_{s}" for kind in ("score", "bbox", "kps") for s in STRIDES]
    nodes = [helper.make_node("Constant", [], [n], name=f"const_{n}", value=numpy_helper.from_array(o, n + "_value"))
             for n, o in zip(names, outputs)]
    graph = helper.make_graph(
        nodes, "scrfd_standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, DET, DET])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(o.shape)) for n, o in zip(names, outputs)],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def arcface_matrix(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((3 * 14 * 14, 512)).astype(np.float32) / 10


def write_arcface(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("AveragePool", ["data"], ["pooled"], name="pool", kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "weight"], ["fc1"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "arcface_standin",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 512])],
        initializer=[numpy_helper.from_array(arcface_matrix(), "weight")],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def arcface_reference(bgr_112: np.ndarray) -> np.ndarray:
    """What the ArcFace stand-in computes, in numpy, with insightface's preprocessing (RGB, (x - 127.5) / 127.5)."""
    x = (bgr_112[:, :, ::-1].astype(np.float32) - 127.5) / 127.5
    pooled = x.reshape(14, 8, 14, 8, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(1, -1)
    return pooled @ arcface_matrix()


class RetinaFaceStandIn:
    def __init__(self, rows: np.ndarray):
        self.rows = np.asarray(rows, np.float32).reshape(-1, 15)
        self.calls = []

    def detect_faces(self, image: np.ndarray, conf_threshold: float = 0.8) -> np.ndarray:
        self.calls.append((image.shape, conf_threshold))
        return self.rows[self.rows[:, 4] >= conf_threshold]


SKIN, CLOTH = 1, 16


class ParserStandIn(torch.nn.Module):
    """Labels: skin inside a disc around the centre, cloth below row 430, background elsewhere."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        n, _, h, w = x.shape
        labels = torch.zeros(n, h, w, dtype=torch.long)
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        labels[:, (yy - 256) ** 2 + (xx - 256) ** 2 < 150**2] = SKIN
        labels[:, yy > 430] = CLOTH
        logits = torch.nn.functional.one_hot(labels, 19).permute(0, 3, 1, 2).float() * 5
        return logits, logits[:, :, ::2, ::2]


def standin_labels() -> torch.Tensor:
    return ParserStandIn()(torch.zeros(1, 3, 512, 512))[0].argmax(1)[0]


class EvaStandIn(torch.nn.Module):
    image_size = 336
    image_mean = (0.48145466, 0.4578275, 0.40821073)
    image_std = (0.26862954, 0.26130258, 0.27577711)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.patch = torch.nn.Conv2d(3, 1024, 14, 14)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 1024))
        self.head = torch.nn.Linear(1024, 768)
        self.inputs = []

    def forward(self, x, return_all_features=False, return_hidden=False, shuffle=False):
        self.inputs.append(x.clone())
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.patch(x).flatten(2).transpose(1, 2)], dim=1)
        hidden = []
        for idx in range(24):
            if 0 < idx <= 20 and idx % 4 == 0 and return_hidden:
                hidden.append(tokens)
            tokens = tokens + 0.05 * torch.tanh(tokens * (idx + 1) / 24)
        embedding = self.head(tokens[:, 0])
        return (embedding, hidden) if return_hidden else embedding
