"""Face metrics against values computed by hand, and the face tracker on a real portrait."""

import numpy as np
import pytest

from evaluators.metrics.face import (
    FaceTracker,
    count_blinks,
    eye_aspect_ratio,
    face_mask,
    flicker,
    lipsync_correlation,
    loudness_envelope,
    mouth_opening,
    ssim_outside,
)

FPS = 25
SR = 22050


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """A public-domain NASA portrait shipped in scikit-image (512 x 512 RGB)."""
    from skimage import data

    return data.astronaut()


def synthetic_face(gap=4.0, eye_open=3.0):
    """(478, 2) points: eyes 60 px apart (centres (70, 100) and (130, 100)), eye width 20 px,
    lids ``eye_open`` px above and below the eye line, inner lips ``gap`` px apart."""
    lm = np.zeros((478, 2))
    for (p1, p2, p3, p4, p5, p6), cx in (((33, 160, 158, 133, 153, 144), 70.0),
                                         ((362, 385, 387, 263, 373, 380), 130.0)):
        lm[p1], lm[p4] = (cx - 10, 100), (cx + 10, 100)
        lm[p2], lm[p3] = (cx - 4, 100 - eye_open), (cx + 4, 100 - eye_open)
        lm[p6], lm[p5] = (cx - 4, 100 + eye_open), (cx + 4, 100 + eye_open)
    lm[13], lm[14] = (100, 160 - gap / 2), (100, 160 + gap / 2)
    return lm


def test_mouth_opening_and_ear_by_hand():
    lm = synthetic_face(gap=6.0, eye_open=3.0)
    assert mouth_opening(lm) == pytest.approx(6.0 / 60.0)
    # each eye: (6 + 6) / (2 * 20) = 0.3
    assert eye_aspect_ratio(lm) == pytest.approx(0.3)
    # vectorised over frames; scale invariant; NaN frames stay NaN
    clip = np.stack([lm, 2 * lm, synthetic_face(gap=0.0, eye_open=1.0), np.full_like(lm, np.nan)])
    np.testing.assert_allclose(mouth_opening(clip)[:3], [0.1, 0.1, 0.0])
    np.testing.assert_allclose(eye_aspect_ratio(clip)[:3], [0.3, 0.3, 0.1])
    assert np.isnan(mouth_opening(clip)[3]) and np.isnan(eye_aspect_ratio(clip)[3])


def test_count_blinks_finds_three_dips():
    rng = np.random.default_rng(0)
    ear = 0.3 + 0.005 * rng.standard_normal(250)  # 10 s at 25 fps
    for centre in (40, 120, 200):
        ear[centre - 2: centre + 3] = [0.22, 0.12, 0.05, 0.14, 0.24]
    ear[160:190] = 0.05  # eyes shut for 1.2 s: not a blink
    ear[150] = np.nan
    blinks = count_blinks(ear, FPS)
    assert blinks.count == 3
    assert blinks.frames.tolist() == [40, 120, 200]
    assert blinks.per_minute == pytest.approx(3 / (10 / 60))


def test_count_blinks_counts_a_jittery_dip_once():
    ear = np.full(100, 0.3)
    ear[50:56] = [0.2, 0.1, 0.22, 0.19, 0.08, 0.25]  # crosses 0.7 x 0.3 = 0.21 twice
    assert count_blinks(ear, FPS).count == 1


def test_loudness_envelope_of_a_sine():
    t = np.arange(SR) / SR
    env = loudness_envelope(0.5 * np.sin(2 * np.pi * 440 * t), SR, FPS)
    assert env.shape == (25,)
    np.testing.assert_allclose(env, 20 * np.log10(0.5 / np.sqrt(2)), atol=0.1)  # -9.03 dB
    assert loudness_envelope(np.zeros(SR), SR, FPS).max() == -100.0


def test_lipsync_correlation_and_lag():
    n = 100
    t = np.arange(int(n / FPS * SR)) / SR
    level = 0.05 + 0.45 * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t) * np.sin(2 * np.pi * 0.4 * t))
    audio = level * np.sin(2 * np.pi * 200 * t)
    opening = level[(np.arange(n) / FPS * SR).astype(int)]  # mouth follows the level
    r = lipsync_correlation(opening, audio, SR, FPS)
    assert r["pearson"] > 0.9 and r["best_lag"] == 0

    late = np.full(n, np.nan)
    late[2:] = opening[:-2]  # the mouth moves two frames after the sound; first frames: no face
    r = lipsync_correlation(late, audio, SR, FPS, max_lag_frames=3)
    assert r["best_lag"] == 2 and r["best_pearson"] > 0.9
    assert r["pearson"] < r["best_pearson"]
    early = np.roll(opening, -1)
    assert lipsync_correlation(early, audio, SR, FPS)["best_lag"] == -1


def test_ssim_outside_and_flicker():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64]
    ref = np.stack([x * 4, y * 4, (x + y) * 2], -1).astype(np.uint8)
    mask = np.ones((64, 64), bool)
    mask[16:48, 16:48] = False  # the "face"
    same = ssim_outside([ref, ref.copy()], ref, mask)
    np.testing.assert_allclose(same, 1.0)
    noisy = np.clip(ref + rng.normal(0, 40, ref.shape), 0, 255).astype(np.uint8)
    changed_face = ref.copy()
    changed_face[20:44, 20:44] = 255 - changed_face[20:44, 20:44]
    s = ssim_outside([noisy, changed_face], ref, mask)
    assert s[0] < 0.6
    assert s[1] > 0.95  # a change well inside the face barely reaches the background

    assert flicker([ref] * 5, mask) == 0.0
    pumping = [np.clip(ref.astype(int) + d, 0, 255).astype(np.uint8) for d in (0, 10, 0, 10)]
    assert flicker(pumping, mask) == pytest.approx(5.0, abs=0.3)


def test_face_mask_covers_the_hull_and_margin():
    lm = np.zeros((478, 2))
    lm[:, 0] = np.linspace(40, 60, 478)
    lm[:, 1] = np.tile([30.0, 70.0], 239)  # a 20 x 40 box: face height 40
    m = face_mask(lm, (100, 100, 3), margin=0.25)  # grown by 10 px
    assert m[50, 50] and m[50, 69] and m[20, 50] and m[79, 50]
    assert not m[50, 72] and not m[18, 50] and not m[5, 5]
    moved = np.stack([lm, lm + [30, 0], np.full_like(lm, np.nan)])
    assert face_mask(moved, (100, 100), margin=0.0)[50, 85]  # union over frames


def test_face_tracker_on_a_real_portrait(astronaut):
    with FaceTracker() as tracker:
        lm = tracker.landmarks(astronaut)
        assert lm is not None and lm.shape == (478, 2)
        assert 150 < lm[:, 0].mean() < 300 and 60 < lm[:, 1].mean() < 200  # her face
        # a smile showing the teeth: lips slightly apart (about 0.16), far from speech openings
        assert 0.05 < mouth_opening(lm) < 0.25
        assert 0.2 < eye_aspect_ratio(lm) < 0.4
        blank = np.zeros_like(astronaut)
        track = tracker.track([astronaut, blank])
    assert track.shape == (2, 478, 2)
    assert np.all(np.isfinite(track[0])) and np.all(np.isnan(track[1]))
    m = face_mask(track, astronaut.shape)
    assert m[int(lm[13, 1]), int(lm[13, 0])] and not m[10, 500]
