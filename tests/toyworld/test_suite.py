"""The world's benchmark suite loads as Proteus-Bench v1, covers the 150 evaluation identities, balances motions."""

from __future__ import annotations

from collections import Counter

from proteus_id.evaluation.suite.schema import load_suite
from proteus_id.toyworld.captions import parse_prompt
from proteus_id.toyworld.suite import write_suite
from proteus_id.toyworld.traits import MOTIONS


def test_suite_of_the_evaluation_identities(tmp_path):
    suite = load_suite(write_suite(tmp_path, prompts_per_identity=2))
    jobs = suite.jobs()
    assert len(jobs) == 300 and len({j.identity.id for j in jobs}) == 150
    motions = Counter(parse_prompt(j.text)["motion"] for j in jobs)
    assert set(motions) == set(MOTIONS) and max(motions.values()) - min(motions.values()) <= 1
    first = jobs[0]
    assert first.identity.image.is_file() and first.text.lower().startswith(first.identity.person.split()[0])
    assert "{person}" not in first.text and first.identity.person in first.text.lower()
