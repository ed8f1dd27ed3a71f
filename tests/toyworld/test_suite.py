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


def test_contrast_negatives_leave_the_prompts_as_they_were(tmp_path):
    plain = load_suite(write_suite(tmp_path / "plain", prompts_per_identity=1)).jobs()
    contrasted = load_suite(write_suite(tmp_path / "opposite", prompts_per_identity=1, negative="opposite")).jobs()
    assert [j.text for j in contrasted] == [j.text for j in plain] and not any(j.negative_text for j in plain)
    kinds = Counter()
    for job in contrasted:
        asked, negative = parse_prompt(job.text), parse_prompt(job.negative_text)
        assert "{person}" not in job.negative_text and job.identity.person in job.negative_text.lower()
        kinds[(asked["motion"], negative["motion"])] += 1
    assert kinds[("turn left", "turn right")] and kinds[("walk right", "walk left")] and kinds[("nod", "still")]
    assert all(m == "still" for (a, m) in kinds if a in ("nod", "smile", "blink", "talk", "still"))
