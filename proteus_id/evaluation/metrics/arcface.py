"""insightface's ArcFace recognition network (an ONNX file, e.g. antelopev2's glintr100.onnx) run with onnxruntime.

Input: aligned 112 x 112 RGB crops, (pixel - 127.5) / 127.5, NCHW. Some insightface exports bake that
normalisation into the graph (their first nodes are Sub and Mul); those get raw 0..255 pixels instead, the same test
insightface's own ArcFaceONNX makes. Output: the un-normalised embedding (512-d for glintr100).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import require
from .base import MetricUnavailable


class ArcFaceONNX:
    def __init__(self, path: str | Path, device: str = "cpu"):
        path = Path(path)
        if not path.is_file():
            raise MetricUnavailable(f"ArcFace ONNX file {path} not found")
        try:
            ort = require("onnxruntime", "released-face", "FaceSim-Arc")
        except ImportError as err:
            raise MetricUnavailable(str(err)) from err
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2  # this is one of several processes on a small machine
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.input_size = (int(shape[2]), int(shape[3])) if isinstance(shape[2], int) else (112, 112)
        self.mean, self.std = (0.0, 1.0) if _normalisation_in_graph(path) else (127.5, 127.5)
        self.path = path

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """Aligned RGB uint8 crops (N, 112, 112, 3) -> embeddings (N, D) float32."""
        if not crops:
            return np.zeros((0, 0), np.float32)
        batch = np.stack(crops).astype(np.float32)
        if batch.shape[1:3] != self.input_size:
            import cv2

            batch = np.stack([cv2.resize(c, self.input_size[::-1]) for c in batch]).astype(np.float32)
        batch = ((batch - self.mean) / self.std).transpose(0, 3, 1, 2)
        return np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0], np.float32)


def _normalisation_in_graph(path: Path) -> bool:
    """True when the graph starts with Sub and Mul nodes (insightface's check); False when `onnx` is not installed."""
    try:
        import onnx
    except ImportError:
        return False
    graph = onnx.load(str(path), load_external_data=False).graph
    ops = [node.op_type for node in graph.node[:8]]
    return "Sub" in ops and "Mul" in ops
