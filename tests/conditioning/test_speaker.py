"""GE2E speaker embeddings from the packaged weights: same voice closer than another voice."""

from pathlib import Path

import numpy as np
import pytest

from conditioning.audio import load_audio
from conditioning.speaker import load_speaker_encoder, speaker_similarity

DATA = Path("/usr/share/pocketsphinx/test/data")  # Debian pocketsphinx-testdata (.ci/setup)
LIBRIVOX = sorted((DATA / "librivox").glob("*.wav"))
CARDS = sorted((DATA / "cards").glob("*.wav"))


def test_embedding_is_unit_length_and_same_speaker_is_closer():
    if not (CARDS and LIBRIVOX):
        pytest.fail("pocketsphinx-testdata is missing: run .ci/setup")
    enc = load_speaker_encoder()
    a = [load_audio(p) for p in (LIBRIVOX[0], LIBRIVOX[2], CARDS[4])]
    e = [enc.embed(x.wav, x.sample_rate) for x in a]
    assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in e)
    same, other = float(e[0] @ e[1]), float(e[0] @ e[2])
    assert same > 0.8 and same - other > 0.1, (same, other)
    assert speaker_similarity(a[0].wav, 16000, a[0].wav, 16000) > 0.999
