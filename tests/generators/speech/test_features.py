"""WORLD features and the prosody renderer: each change does what it says, measured back."""

import numpy as np
import pytest

from conditioning.audio import load_audio
from generators.speech.features import (
    CHANGES,
    FRAME_MS,
    apply_prosody,
    content_features,
    final_ramp,
    formant_factor,
    prosody_features,
    rule_changes,
    synthesize,
    warp_mel,
    world_analyze,
)
from generators.speech.profiles import PROFILES, PROSODY, default_direction_model


@pytest.fixture(scope="module")
def feats(real_clip):
    return world_analyze(load_audio(real_clip, target_sr=22050).wav)


def test_frame_rate_and_shapes(feats, real_clip):
    seconds = load_audio(real_clip).duration
    assert abs(feats.frames * FRAME_MS / 1000 - seconds) < 0.05
    assert content_features(feats).shape == (feats.frames, 20)
    pros = prosody_features(feats)
    assert pros.shape == (feats.frames, 4) and set(np.unique(pros[:, 1])) <= {0.0, 1.0}


def test_no_change_is_identity(feats):
    zero = np.zeros((feats.frames, len(CHANGES)))
    out = apply_prosody(feats, zero)
    assert out.frames == feats.frames
    assert np.allclose(out.f0, feats.f0) and np.allclose(out.sp, feats.sp, rtol=1e-6)


def test_each_change_moves_its_parameter(feats):
    c = np.zeros((feats.frames, len(CHANGES)))
    c[:, 0] = 12.0  # one octave up
    up = apply_prosody(feats, c)
    v = feats.f0 > 0
    assert np.allclose(up.f0[v], np.clip(feats.f0[v] * 2, 50, 900))
    c[:] = 0
    c[:, 1] = 6.0
    loud = apply_prosody(feats, c)
    assert np.allclose(loud.sp / feats.sp, 10 ** 0.6, rtol=2e-3)
    c[:] = 0
    c[:, 4] = np.log(1.25)  # 25 % faster
    fast = apply_prosody(feats, c)
    assert abs(fast.frames - feats.frames / 1.25) <= 1
    c[:] = 0
    c[:, 3] = 0.3
    breathy = apply_prosody(feats, c)
    assert breathy.ap[v].mean() > feats.ap[v].mean()
    c[:] = 0
    c[:, 5] = np.log(1.05)  # formants 5 % up, in voiced frames only
    smiled = apply_prosody(feats, c)
    assert np.allclose(smiled.sp[~v], feats.sp[~v]) and not np.allclose(smiled.sp[v], feats.sp[v])
    assert np.allclose(smiled.f0, feats.f0)


def test_the_formant_warp_is_measured_back(feats):
    """A known warp of the envelope, re-synthesised and analysed again: ``formant_factor`` (the
    generator's, for parallel data) and the evaluation's median F3 (LPC) both see it, and neither
    mistakes a brighter, louder, higher voice for moved formants."""
    from evaluators.metrics.speech import prosody_statistics

    pros = prosody_features(feats)
    k = PROSODY.index("formant")
    base = prosody_statistics(synthesize(feats), 22050)["f3_median_hz"]
    moved = {}
    for lf in (0.0, 0.05):
        raw = np.zeros(len(PROSODY))
        raw[k] = lf
        raw[0], raw[2], raw[4] = 3.0, 4.0, 1.5  # higher, louder, brighter
        y = synthesize(apply_prosody(feats, rule_changes(pros, raw)))
        again = world_analyze(y)
        assert abs(formant_factor(feats.sp, feats.f0 > 0, again.sp, again.f0 > 0) - lf) < 0.012
        moved[lf] = np.log(prosody_statistics(y, 22050)["f3_median_hz"] / base)
    # LPC formant picking is coarser than the warp search: F3 stays within 2 % when the formants
    # stay, and rises by at least 1.5 % of the 5 % when they move
    assert abs(moved[0.0]) < 0.02 and moved[0.05] - moved[0.0] > 0.015, moved


def test_a_brighter_voice_does_not_make_a_fricative_louder_than_the_level_asked(feats):
    """``warp_mel`` (the spectrum of unvoiced frames): a positive tilt may reshape a fricative's
    spectrum, but its energy rises by the gain at most; a negative tilt (a darker voice) and a
    spectrum whose energy lies low are moved exactly as asked."""
    c = np.zeros((feats.frames, len(CHANGES)))
    c[:, 1], c[:, 2] = 3.0, 2.0  # +3 dB, +2 dB per octave above 500 Hz
    freqs = np.geomspace(60, 8000, 80)
    hiss = np.where(freqs > 3000, 0.0, -4.0)[:, None] * np.ones((1, feats.frames))  # log magnitude
    hum = np.where(freqs < 500, 0.0, -4.0)[:, None] * np.ones((1, feats.frames))

    def energy_rise_db(before, after):
        return 10 * np.log10(np.exp(2 * after).sum(0) / np.exp(2 * before).sum(0))

    bright = apply_prosody(feats, c)
    assert np.all(energy_rise_db(hiss, warp_mel(hiss, bright, freqs)) <= 3.0 + 1e-6)
    shape = (warp_mel(hiss, bright, freqs) - hiss)[:, 0]
    assert shape[-1] > shape[0]  # still brighter: the tilt's shape is kept
    low = warp_mel(hum, bright, freqs)
    expect = (3.0 + 2.0 * np.log2(np.maximum(freqs, 500) / 500))[:, None]
    assert np.allclose((low - hum) * 20 / np.log(10.0), expect, atol=0.1)  # barely capped
    c[:, 2] = -2.0
    dark = warp_mel(hiss, apply_prosody(feats, c), freqs)
    expect = (3.0 - 2.0 * np.log2(np.maximum(freqs, 500) / 500))[:, None]
    assert np.allclose((dark - hiss) * 20 / np.log(10.0), expect, atol=1e-6)


def test_rule_changes_follow_the_profiles(feats):
    pros = prosody_features(feats)
    assert np.allclose(rule_changes(pros, np.zeros(len(PROSODY))), 0)
    for emo, sign in [("angry", 1), ("happy", 1), ("sad", -1)]:
        ch = rule_changes(pros, np.array(PROFILES[emo]))
        assert np.sign(np.median(ch[:, 0])) == sign  # F0
        assert np.sign(np.median(ch[:, 1])) == sign  # level
    sad = rule_changes(pros, np.array(PROFILES["sad"]))
    assert np.all(sad[:, 4] < 0)  # slower


def test_the_final_rise_is_not_cancelled_by_a_wider_range():
    # a declarative contour: 300 voiced frames falling from +2 to -4 st around the median
    T = 300
    st = np.linspace(2.0, -4.0, T)
    pros = np.stack([st / 3.0, np.ones(T), np.zeros(T), np.zeros(T)], axis=1).astype(np.float32)
    raw = np.array(PROFILES["surprised"])
    d_st = rule_changes(pros, raw)[:, 0]
    out = st + d_st
    ramp = final_ramp(np.ones(T, bool))
    body, end = out[ramp == 0], out[ramp > 0.99]
    # the last frames end above the body's median by about the rise asked for, less the fall
    assert end.mean() - np.median(body) > 0.5 * raw[PROSODY.index("final")] - 2.0
    assert end.mean() > body[-1]  # it rises into the end
    # outside the final stretch the range still widens the excursions
    assert np.ptp(out[ramp == 0]) == pytest.approx(np.exp(raw[1]) * np.ptp(st[ramp == 0]), rel=1e-4)


def test_the_final_movement_holds_after_the_last_voiced_frame():
    """No step in the F0 target where voicing ends: the trailing unvoiced frames keep the last
    voiced frame's change (they have no F0 to move), whatever the contour did before."""
    from generators.speech.features import interp_unvoiced, seconds_to_last_voiced

    T = 120
    voiced = np.arange(T) < 80
    st = interp_unvoiced(np.where(voiced, np.linspace(1.0, -5.0, T), 0.0), voiced)
    pros = np.stack([st / 3.0, voiced, np.zeros(T), np.clip(seconds_to_last_voiced(voiced), -1, 2)],
                    axis=1).astype(np.float32)
    for emotion in ("surprised", "sad", "angry"):
        d_st = rule_changes(pros, np.array(PROFILES[emotion]))[:, 0]
        assert np.allclose(d_st[80:], d_st[79])
        assert abs(d_st[79] - d_st[78]) < 0.5  # no jump into the last voiced frame either


def test_synthesis_keeps_duration_and_is_finite(feats):
    y = synthesize(feats)
    assert np.isfinite(y).all()
    assert abs(len(y) - feats.frames * 256) <= 512


def test_direction_model_signs_match_the_literature():
    m = default_direction_model()
    i = {n: k for k, n in enumerate(PROSODY)}
    assert m.directions["angry"][i["loudness"]] > 0 and m.directions["sad"][i["loudness"]] < 0
    assert m.directions["sad"][i["rate"]] < 0 and m.directions["fearful"][i["rate"]] > 0
    assert m.directions["surprised"][i["final"]] > 0
    # a smile raises the formants (Tartter 1980); no other category moves them
    assert m.directions["happy"][i["formant"]] > 0
    assert all(m.directions[c][i["formant"]] == 0 for c in m.directions if c != "happy")
    assert m.axes is not None
