"""The world's benchmark: a Proteus-Bench suite (format v1, docs/evaluation.md) of the 150 evaluation identities.

    out/suite.jsonl          header, 150 identity lines, one prompt line per job, explicit jobs
    out/faces/evalNNN.png    each identity's reference crop (the same render the shipped examples use)

Prompts are written by the world's caption generator with `{person}` as the subject, so `proteus-id bench` fills
in the suite's person phrase ("a man" / "a woman"), and the toy_text metric reads them back with the world's phrase
tables. Motions cycle over the 11 classes so every class gets the same number of jobs (chance 1/11).
With `negative="still"` or `"opposite"` every prompt line also carries `negative_prompt`, the same caption with the
motion changed (`captions.contrast_prompt`): the prompts themselves are identical to a suite written without.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .captions import caption, contrast_prompt, identity_prompt
from .traits import DEFAULT_WORLD_SEED, MOTIONS, identity_numbers, sample_identity, sample_scene
from .world import render_reference


def write_suite(out_dir: str | Path, prompts_per_identity: int = 2, world_seed: int = DEFAULT_WORLD_SEED,
                negative: str = "none") -> Path:
    out = Path(out_dir)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    lines = [{"type": "suite", "proteus_bench": 1, "name": "toyworld-eval150", "prompts_per_identity": prompts_per_identity}]
    prompts, jobs = [], []
    for index, number in enumerate(identity_numbers("eval")):
        identity = sample_identity(number, world_seed)
        name = f"eval{number:03d}"
        render_reference(identity, variant=0, world_seed=world_seed).save(out / "faces" / f"{name}.png")
        rng = np.random.default_rng([world_seed, 77, number])
        lines.append({
            "type": "identity", "id": name, "image": f"faces/{name}.png", "gender": identity.gender,
            "profession": "none (synthetic person)", "region": "toyworld", "source": f"procedural world, seed {world_seed}",
            "licence": "CC0 (generated)", "person": f"a {identity.gender}",
            "identity_prompt": identity_prompt(identity, rng),
        })
        for k in range(prompts_per_identity):
            motion = MOTIONS[(index * prompts_per_identity + k) % len(MOTIONS)]
            scene = sample_scene(rng, motion=motion)
            prompt_id = f"{name}-p{k}"
            text = caption(identity, scene, rng, subject="{person}")
            prompt = {"type": "prompt", "id": prompt_id, "category": "action", "text": text}
            if negative != "none":
                prompt["negative_prompt"] = contrast_prompt(text, negative)
            prompts.append(prompt)
            jobs.append({"type": "job", "identity": name, "prompt": prompt_id})
    path = out / "suite.jsonl"
    tmp = out / ".suite.jsonl.tmp"
    tmp.write_text("".join(json.dumps(row) + "\n" for row in lines + prompts + jobs))
    os.replace(tmp, path)
    return path
