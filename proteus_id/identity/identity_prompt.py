"""The identity prompt, derived from the user prompt when none is given.

The released model reads a short appearance description of the person (32 T5 tokens, e.g. "A young woman with brown
hair tied in a ponytail, wearing a beige shirt"); the paper has GPT-4o write it. Without a language model we use a
rule that keeps the prompt's own description of the person:

1. Take the first sentence that mentions a person ("man", "woman", "person", "girl", "boy", "lady", "guy", "child",
   "he", "she", ...); if none does, the first sentence.
2. In it, start at the noun phrase that names the person: the article ("a", "an", "the") or possessive before the
   first person word (up to four words before it, so "a young red-haired woman" stays whole).
3. Keep at most 24 words (the 32-token budget leaves room for punctuation and word pieces); drop a trailing comma
   or conjunction; capitalise the first letter.

Example: "In a sunlit park, a young woman with brown hair in a ponytail, wearing a white sweater, walks toward the
camera." -> "A young woman with brown hair in a ponytail, wearing a white sweater, walks toward the camera."
"""

from __future__ import annotations

import re

PERSON_WORDS = (
    "man", "men", "woman", "women", "person", "people", "boy", "girl", "lady", "guy", "gentleman", "child", "kid",
    "teenager", "student", "he", "she", "elderly", "actor", "actress", "athlete", "chef", "doctor", "worker",
)
MAX_WORDS = 24
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_LEADING = {"a", "an", "the", "this", "that", "his", "her", "their", "our", "my", "one"}
_TRAILING = {"and", "or", "but", "while", "as", "with", "who", "that", "which"}


def derive_identity_prompt(prompt: str, max_words: int = MAX_WORDS) -> str:
    """The rule in the module docstring. Raises ValueError for an empty prompt."""
    text = " ".join(prompt.split())
    if not text:
        raise ValueError("cannot derive an identity prompt from an empty prompt")
    sentences = [s for s in _SENTENCES.split(text) if s.strip()]
    chosen, start = sentences[0], 0
    for sentence in sentences:
        index = _person_word_index(sentence.split())
        if index is not None:
            chosen, start = sentence, index
            break
    words = chosen.split()
    if start:
        # walk back over adjectives to the article/possessive that opens the noun phrase
        for back in range(start, max(-1, start - 5), -1):
            if _plain(words[back]) in _LEADING:
                start = back
                break
    words = words[start: start + max_words]
    while len(words) > 1 and (_plain(words[-1]) in _TRAILING or words[-1].endswith(",")):
        if words[-1].endswith(",") and _plain(words[-1]) not in _TRAILING:
            words[-1] = words[-1].rstrip(",")
            break
        words = words[:-1]
    result = " ".join(words)
    return result[0].upper() + result[1:]


def _plain(word: str) -> str:
    return re.sub(r"[^a-z'-]", "", word.lower())


def _person_word_index(words: list[str]) -> int | None:
    for i, word in enumerate(words):
        plain = _plain(word)
        if plain in PERSON_WORDS or (plain.endswith("'s") and plain[:-2] in PERSON_WORDS):
            return i
    return None
