"""EmotionSpace: shared coordinates and transfer between two synthetic media."""

import numpy as np
import pytest

from conditioning import CATEGORIES, DirectionVectorModel, EmotionSpace, EmotionSpec

NON_NEUTRAL = [c for c in CATEGORIES if c != "neutral"]


def medium(dim, seed):
    rng = np.random.default_rng(seed)
    neutral = rng.normal(0, 1, dim)
    dirs = rng.normal(0, 1, (8, dim))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    xs, ys = [neutral + rng.normal(0, 0.2, (40, dim))], ["neutral"] * 40
    for k, d in zip(NON_NEUTRAL, dirs):
        xs.append(neutral + 3.0 * d + rng.normal(0, 0.2, (40, dim)))
        ys += [k] * 40
    return DirectionVectorModel.fit(np.concatenate(xs), ys), dict(zip(NON_NEUTRAL, dirs)), neutral


@pytest.fixture(scope="module")
def space():
    voice, voice_dirs, _ = medium(24, 1)
    face, face_dirs, face_neutral = medium(12, 2)
    return EmotionSpace({"voice": voice, "face": face}), face_dirs, face_neutral


def test_transfer_steers_the_target_medium(space):
    sp, face_dirs, face_neutral = space
    emb = sp.transfer("angry@0.5", "face")
    expected = face_neutral + 0.5 * 3.0 * face_dirs["angry"]
    assert np.linalg.norm(emb - expected) < 0.3


def test_project_reads_back_shared_coordinates(space):
    sp, _, _ = space
    spec = EmotionSpec({"fearful": 0.6, "surprised": 0.4}, 0.9)
    emb = sp.transfer(spec, "voice")
    assert sp.project("voice", emb).isclose(spec, tol=1e-6)


def test_cross_modal_transfer_voice_to_face(space):
    sp, _, _ = space
    voice_emb = sp.transfer("sad@0.7", "voice")
    face_emb = sp.transfer_embedding("voice", voice_emb, "face")
    read = sp.project("face", face_emb)
    assert read.dominant == "sad"
    assert read.intensity == pytest.approx(0.7, abs=1e-6)
    assert sp.distance(read, "sad@0.7") < 1e-6


def test_unknown_medium(space):
    sp, _, _ = space
    with pytest.raises(ValueError, match="unknown medium 'music'"):
        sp.transfer("happy", "music")


def test_save_and_load(space, tmp_path):
    sp, _, _ = space
    sp.save(tmp_path)
    loaded = EmotionSpace.load(tmp_path)
    assert sorted(loaded.media) == ["face", "voice"]
    assert np.array_equal(loaded.transfer("happy@0.3", "face"), sp.transfer("happy@0.3", "face"))
