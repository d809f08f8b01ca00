"""Content kept: word error rate of a recognizer's transcript against a reference."""

from __future__ import annotations

import re

import numpy as np

_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_error_rate(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words): the Levenshtein distance over words (substitutions, deletions,
    insertions), case and punctuation ignored."""
    ref, hyp = _words(reference), _words(hypothesis)
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return int(d[-1]), len(ref)


class WordErrorRate:
    """Corpus WER: total edits over total reference words."""

    def __init__(self) -> None:
        self.edits = 0
        self.words = 0

    def update(self, reference: str, hypothesis: str) -> None:
        e, n = word_error_rate(reference, hypothesis)
        self.edits += e
        self.words += n

    def compute(self) -> float:
        return self.edits / self.words if self.words else float("nan")
