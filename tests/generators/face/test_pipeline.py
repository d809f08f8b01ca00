"""The talking-head pipeline's plumbing with a tiny untrained denoiser: inputs, curves, frames."""

import numpy as np
import pytest
import soundfile as sf
import torch

from conditioning import CATEGORIES, parse_emotion
from generators.face.pipeline_face import (
    SAD_POSTURE,
    WINDOW_FRAMES,
    apply_posture,
    blink_track,
    category_weights,
    gaze_track,
    head_track,
)
from generators.face.rig import EMOTION_AUS, MOTION


def test_generates_one_frame_per_40_ms(tiny_face_pipeline, astronaut, real_clip):
    wav, sr = sf.read(real_clip, dtype="float32")
    out = tiny_face_pipeline(astronaut, wav, sr, emotion="happy@0.8", num_inference_steps=2,
                             face_resolution=96, generator=torch.Generator().manual_seed(0))
    assert out.fps == 25 and out.n_frames == round(len(wav) / sr * 25)
    assert abs(out.duration - len(out.audio) / out.sample_rate) <= 1 / 25
    assert out.params.shape == (out.n_frames, len(MOTION)) and np.isfinite(out.params).all()
    f0 = out.frame(0)
    assert f0.dtype == np.uint8 and f0.shape == (192, 192, 3)


def test_curve_changes_the_expression_over_time(tiny_face_pipeline):
    emb = tiny_face_pipeline.emotion_embedding(parse_emotion("sad -> happy over 2 s"), 100)
    au12, au15 = EMOTION_AUS.index("AU12"), EMOTION_AUS.index("AU15")
    assert emb[0, au15] > 0.5 > emb[0, au12]
    assert emb[-1, au12] > 0.5 > emb[-1, au15]
    with pytest.raises(ValueError, match="seconds"):
        tiny_face_pipeline.emotion_embedding(parse_emotion("sad -> happy over 4 bars"), 10)


def test_long_clips_are_generated_in_windows(tiny_face_pipeline):
    T = WINDOW_FRAMES * 2 + 50
    feats = np.full((T, 80), -5.0, np.float32)
    emb = np.zeros((T, 16), np.float32)
    p = tiny_face_pipeline.generate_motion(feats, emb, 1, 1.0, torch.Generator().manual_seed(0))
    assert p.shape == (T, len(MOTION)) and (p >= 0).all() and (p <= 1.2).all()


def test_blinks_at_a_natural_rate():
    rng = np.random.default_rng(0)
    b = blink_track(25 * 600, rng, per_minute=20.0)  # ten minutes
    onsets = np.nonzero((b[1:] >= 0.9) & (b[:-1] < 0.9))[0]
    assert 150 <= len(onsets) <= 250
    assert np.diff(onsets).min() >= 1.2 * 25 - 1


def test_head_and_gaze_are_small_and_smooth():
    rng = np.random.default_rng(1)
    h = head_track(500, rng)
    g = gaze_track(500, rng)
    assert np.abs(np.degrees(h[:, 0])).max() < 3 and np.abs(h[:, 1:]).max() < 0.06
    assert np.abs(np.diff(h, axis=0)).max() < 0.01
    assert np.abs(g).max() <= 0.6


def test_bad_inputs(tiny_face_pipeline, astronaut, real_clip, tmp_path):
    blank = np.full((256, 256, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="no face"):
        tiny_face_pipeline(blank, str(real_clip), emotion="happy")
    with pytest.raises(ValueError) as bad_emotion:
        tiny_face_pipeline(astronaut, str(real_clip), emotion="blorp@0.5")
    # the parser's one line: the word it could not read, then every form it accepts
    assert str(bad_emotion.value) == (
        f"unknown emotion 'blorp'; accepted: a category ({', '.join(CATEGORIES)}), an alias or "
        "lexicon word (see `affect emotions`), a mixture like 0.6*happy+0.4*surprised, or vad(v,a,d)"
    )
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError):
        tiny_face_pipeline(astronaut, str(empty), emotion="happy")


def test_sadness_lowers_the_eyes_lids_and_head_and_nothing_else_does():
    rng = np.random.default_rng(0)
    n = 100
    blink, gaze, head = blink_track(n, rng), gaze_track(n, rng), head_track(n, rng)
    for text in ("happy@1.0", "angry@0.8", "neutral"):
        b, g, h = apply_posture(blink, gaze, head, category_weights(parse_emotion(text), n))
        assert b is blink and g is gaze and h is head, text
    b, g, h = apply_posture(blink, gaze, head, category_weights(parse_emotion("sad@1.0"), n))
    assert g[:, 1].mean() > gaze[:, 1].mean() + 0.3  # eyes down (image y grows downward)
    assert b.min() >= SAD_POSTURE["lid_droop"] - 1e-9 and b.max() == pytest.approx(max(blink.max(), 0.3))
    assert np.allclose(h[:, 2] - head[:, 2], SAD_POSTURE["head_down"])
    # a curve from happy to sad: the posture arrives with the sadness
    w = category_weights(parse_emotion("happy -> sad over 4 s"), n)
    b, g, h = apply_posture(blink, gaze, head, w)
    assert w["sad"][0] < 0.05 < 0.9 < w["sad"][-1]
    assert g[:10, 1].mean() < g[-10:, 1].mean() - 0.2


def test_expression_stills_hold_each_expression_on_one_analysis(tiny_face_pipeline, portrait):
    """Stills: neutral is the relaxed portrait, happy moves the mouth, sad@0.5 lies between
    neutral and sad@1 around the mouth; a curve is refused with one line."""
    frames = tiny_face_pipeline.expression_stills(None, ["neutral", "happy@1", "sad@0.5", "sad@1"],
                                                  portrait=portrait)
    assert len(frames) == 4 and all(f.shape == portrait.image.shape for f in frames)
    lm = portrait.landmarks
    x0, y0 = np.floor(lm[[61, 0]].min(0)).astype(int) - 4
    x1, y1 = np.ceil(lm[[291, 17]].max(0)).astype(int) + 4

    def mouth_change(f):
        return float(np.abs(f[y0:y1, x0:x1].astype(float) - frames[0][y0:y1, x0:x1]).mean())

    assert mouth_change(frames[1]) > 3.0
    assert 0.5 < mouth_change(frames[2]) < mouth_change(frames[3])
    with pytest.raises(ValueError, match="curve"):
        tiny_face_pipeline.expression_stills(None, ["sad -> happy over 2 s"], portrait=portrait)


def test_noise_scale_is_a_sampling_temperature(tiny_face_pipeline):
    """The same seed at a lower temperature stays closer to the zero-noise motion; bad values are
    refused."""
    feats = np.zeros((40, 80), np.float32)
    emb = tiny_face_pipeline.emotion_embedding(parse_emotion("happy@0.5"), 40)

    def motion(scale):
        return tiny_face_pipeline.generate_motion(feats, emb, 2, 1.0, torch.Generator().manual_seed(0), scale)

    base = motion(1e-6)
    assert np.abs(motion(0.5) - base).mean() < np.abs(motion(1.0) - base).mean()
    with pytest.raises(ValueError, match="noise_scale"):
        tiny_face_pipeline(None, np.zeros(22050, np.float32), 22050, noise_scale=0.0)


def test_save_and_load_round_trip(tiny_face_pipeline, tmp_path):
    """A saved pipeline loads back to the same weights, the same direction model (its own, not the
    rig's default: here the default with longer directions) and so the same motion for a seed."""
    import copy

    from conditioning import DirectionVectorModel
    from generators.face.pipeline_face import TalkingHeadPipeline
    from generators.face.rig import default_direction_model

    base = default_direction_model()
    longer = DirectionVectorModel(base.neutral, base.directions,
                                  {k: 1.5 * v for k, v in base.lengths.items()}, base.centres,
                                  base.axes, base.meta)
    denoiser = copy.deepcopy(tiny_face_pipeline.denoiser)
    # the untrained output layer is zero, so the motion would not depend on any weight: seed it
    torch.nn.init.normal_(denoiser.conv_out.weight, std=0.1, generator=torch.Generator().manual_seed(0))
    pipe = TalkingHeadPipeline(denoiser, tiny_face_pipeline.scheduler, longer)
    pipe.save_pretrained(tmp_path / "ckpt")
    loaded = TalkingHeadPipeline.from_pretrained(tmp_path / "ckpt")
    loaded.set_progress_bar_config(disable=True)

    for a, b in zip(loaded.denoiser.parameters(), pipe.denoiser.parameters(), strict=True):
        assert torch.equal(a, b)
    got = loaded.direction_model
    assert got.categories == longer.categories and got.lengths == longer.lengths != base.lengths
    assert np.array_equal(got.neutral, longer.neutral)
    assert all(np.array_equal(got.directions[k], longer.directions[k]) for k in longer.categories)
    feats = np.random.default_rng(0).normal(-4, 1, (60, 80)).astype(np.float32)

    def motion(p):
        emb = p.emotion_embedding(parse_emotion("happy@0.8"), len(feats))
        return p.generate_motion(feats, emb, 2, 1.5, torch.Generator().manual_seed(0))

    assert np.array_equal(motion(loaded), motion(pipe))
    # what the comparison can tell apart: the default directions give another motion
    assert not np.allclose(motion(loaded), motion(TalkingHeadPipeline(denoiser, pipe.scheduler)))
    with pytest.raises(ValueError, match="not a face checkpoint"):
        TalkingHeadPipeline.from_pretrained(tmp_path)
