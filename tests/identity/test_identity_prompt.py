"""The identity-prompt rule (documented in proteus_id/identity/identity_prompt.py and docs/generate.md)."""

from __future__ import annotations

import pytest

from proteus_id.identity.identity_prompt import MAX_WORDS, derive_identity_prompt


@pytest.mark.parametrize("prompt, expected", [
    # the person's noun phrase, from its article, to the end of the sentence
    ("In a sunlit park, a young woman with brown hair in a ponytail, wearing a white sweater, walks toward the camera.",
     "A young woman with brown hair in a ponytail, wearing a white sweater, walks toward the camera."),
    # the first sentence that mentions a person, not the first sentence
    ("The camera pans across a city at night. An old man with a grey beard smiles. He waves.", "An old man with a grey beard smiles."),
    # a pronoun is a person too
    ("she walks along the beach", "She walks along the beach"),
    # nobody mentioned: the first sentence
    ("A red car drives through the rain. Lights blur.", "A red car drives through the rain."),
    # whitespace is normalised
    ("  Portrait of  a woman\nwith glasses  ", "A woman with glasses"),
])
def test_examples(prompt, expected):
    assert derive_identity_prompt(prompt) == expected


def test_long_descriptions_are_cut_at_a_word_budget():
    prompt = "A man " + " ".join(f"word{i}" for i in range(60)) + "."
    derived = derive_identity_prompt(prompt)
    assert len(derived.split()) == MAX_WORDS and derived.startswith("A man word0")


def test_trailing_conjunctions_and_commas_are_dropped():
    words = ["A", "tall", "man", "with", "a", "beard", "and", "a", "hat", "in", "a", "long", "coat", "over", "a", "shirt",
             "with", "buttons", "near", "a", "wall", "of", "bricks,", "and", "more", "words"]
    derived = derive_identity_prompt(" ".join(words))
    assert derived.endswith("of bricks")


def test_empty_prompt_is_refused():
    with pytest.raises(ValueError):
        derive_identity_prompt("   ")
