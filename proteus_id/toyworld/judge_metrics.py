"""The world's judges as `proteus-id evaluate` metrics (plug-in: `--plugin proteus_id.toyworld.judge_metrics`).

    toy_facesim         mean over the sampled frames of max(0, cos(judge(reference), judge(located face)))
    toy_text            toy_text_alignment: share of the prompt's attributes (clothes, hat, place, light, motion)
                        the judges see; toy_motion_hit, toy_speed_hit, toy_attribute_hit separately

Judges are looked up in: the evaluation config's `extra: {toy_judges: FOLDER}`, then $PROTEUS_ID_TOY_JUDGES, then
the folder shipped with the package (proteus_id/assets/toyworld-judges). Without them the metrics are skipped with
that reason; nothing is made up. Prompts must use the world's vocabulary (docs/toyworld.md); a prompt naming none
of its attributes is "not applicable" for toy_text.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..evaluation.metrics.base import Metric, MetricUnavailable, NotApplicable, file_identity, register_metric_factory

SHIPPED_JUDGES = Path(__file__).resolve().parents[1] / "assets" / "toyworld-judges"


def judges_folder(config) -> Path:
    extra = getattr(config, "extra", None) or {}
    for candidate in (extra.get("toy_judges"), os.environ.get("PROTEUS_ID_TOY_JUDGES"), SHIPPED_JUDGES):
        if candidate and (Path(candidate) / "judges.json").is_file():
            return Path(candidate)
    raise MetricUnavailable("toyworld judges not found (extra.toy_judges, $PROTEUS_ID_TOY_JUDGES or the shipped "
                            "proteus_id/assets/toyworld-judges); train them with `proteus-id toy train-judges`")


class _JudgeMetric(Metric):
    group = "toyworld"

    def __init__(self, config):
        from .judge_eval import JudgeSet

        self.folder = judges_folder(config)
        self.judges = JudgeSet.load(self.folder)

    def fingerprint(self) -> str:
        return f"{self.name}:{file_identity(self.folder)}"

    def describe(self) -> dict:
        return {"description": self.description, "judges": str(self.folder)}


class ToyFaceSim(_JudgeMetric):
    name = "toy_facesim"
    columns = ("toy_facesim",)
    higher_is_better = {"toy_facesim": True}
    description = "identity similarity by the world's identity judge (FaceSim protocol: positive cosine, mean over sampled frames)"

    def compute(self, video, row) -> dict[str, float]:
        if row.image is None:
            raise NotApplicable("no reference image")
        sims = self.judges.identity_similarity(row.image, video.sampled_frames)
        return {"toy_facesim": float(np.mean(sims))}


class ToyText(_JudgeMetric):
    name = "toy_text"
    columns = ("toy_text_alignment", "toy_motion_hit", "toy_speed_hit", "toy_attribute_hit")
    higher_is_better = {c: True for c in columns}
    description = "share of the prompt's world attributes (clothes, hat, place, light, motion) the world's judges see"

    def compute(self, video, row) -> dict[str, float]:
        from ..errors import UserError

        if not row.prompt:
            raise NotApplicable("no prompt")
        try:
            hits = self.judges.text_alignment(video.frames, row.prompt)
        except UserError as err:
            raise NotApplicable(str(err)) from err
        out = {"toy_text_alignment": hits["text_alignment"]}
        if "motion" in hits:
            out["toy_motion_hit"] = hits["motion"]
        if "speed" in hits and hits.get("motion") is not None:
            out["toy_speed_hit"] = hits["speed"]
        scene = [v for k, v in hits.items() if k not in ("motion", "speed", "text_alignment")]
        if scene:
            out["toy_attribute_hit"] = float(np.mean(scene))
        return out


register_metric_factory("toy_facesim", ToyFaceSim, group="toyworld")
register_metric_factory("toy_text", ToyText, group="toyworld")
