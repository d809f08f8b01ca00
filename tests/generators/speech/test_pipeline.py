"""The conversion pipeline's plumbing with a tiny untrained denoiser: inputs, curves, outputs."""

import numpy as np
import pytest
import soundfile as sf
import torch

from conditioning import parse_emotion
from generators.speech.features import CHANGES, prosody_features
from generators.speech.pipeline_speech import (
    OVERLAP_FRAMES,
    TAIL_FRAMES,
    WINDOW_FRAMES,
    EmotionVoiceConversionPipeline,
    generated_frames,
    level_taken_db,
    limit_peaks,
)
from generators.speech.profiles import PROSODY


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_converts_a_real_recording(tiny_speech_pipeline, real_clip):
    wav, sr = sf.read(real_clip, dtype="float32")
    out = tiny_speech_pipeline(wav, sr, emotion="angry@0.7", num_inference_steps=2, generator=g())
    assert out.sample_rate == 22050 and out.audio.dtype == np.float32
    assert np.isfinite(out.audio).all()
    assert 20 * np.log10(np.abs(out.audio).max()) <= -1.0 + 1e-3
    assert 0.5 < out.duration / (len(wav) / sr) < 2.0
    assert out.changes.shape[1] == len(CHANGES) == 6 and out.embedding.shape[1] == len(PROSODY) == 9


def test_the_unvoiced_tail_holds_the_last_generated_frame(tiny_speech_pipeline, real_clip, monkeypatch):
    """The model generates up to TAIL_FRAMES past the last voiced frame; the frames after it
    take the last generated frame's changes, whatever their number."""
    wav, sr = sf.read(real_clip, dtype="float32")
    # a recording that ends in 0.4 s of breath-like noise: unvoiced, and above the silence gate
    noise = np.random.default_rng(0).normal(0, 0.02, int(0.4 * sr)).astype(np.float32)
    wav = np.concatenate([wav, noise])
    seen = {}
    real = tiny_speech_pipeline._sample

    def spy(states):
        (state,) = states
        seen["voiced"] = prosody_features(state["feats"])[:, 1] > 0
        seen["n"] = len(state["request"].cond)
        return real(states)

    monkeypatch.setattr(tiny_speech_pipeline, "_sample", spy)
    out = tiny_speech_pipeline(wav, sr, emotion="surprised@1", num_inference_steps=2, generator=g())
    voiced = seen["voiced"]
    last = np.flatnonzero(voiced)[-1]
    assert seen["n"] == last + 1 + TAIL_FRAMES < len(out.changes) - 10
    assert np.array_equal(out.changes[seen["n"]:], np.repeat(out.changes[seen["n"] - 1 : seen["n"]],
                                                              len(out.changes) - seen["n"], 0))
    assert not np.allclose(out.changes[: seen["n"]], out.changes[seen["n"] - 1])
    # no voicing: everything is generated; a voiced end: nothing beyond the frames there are
    assert generated_frames(np.zeros(50, bool)) == 50
    assert generated_frames(np.r_[np.zeros(10, bool), np.ones(40, bool)]) == 50
    assert generated_frames(np.r_[np.ones(10, bool), np.zeros(40, bool)]) == 10 + TAIL_FRAMES


def test_the_vocoder_precision_reaches_the_vocoder(tiny_speech_pipeline, real_clip, monkeypatch):
    """On a CPU "auto" and "float32" keep the vocoder in full precision and "half" asks for
    bfloat16 (used where the CPU has it natively); anything else is refused before any work."""
    from generators.speech import pipeline_speech

    wav, sr = sf.read(real_clip, dtype="float32")
    seen = []
    real = pipeline_speech.vocode

    def spy(*args, half=True, **kwargs):
        seen.append(half)
        return real(*args, half=half, **kwargs)

    monkeypatch.setattr(pipeline_speech, "vocode", spy)
    a = tiny_speech_pipeline(wav, sr, emotion="sad", num_inference_steps=1, generator=g())
    b = tiny_speech_pipeline(wav, sr, emotion="sad", num_inference_steps=1, generator=g(),
                      vocoder_precision="float32")
    c = tiny_speech_pipeline(wav, sr, emotion="sad", num_inference_steps=1, generator=g(),
                      vocoder_precision="half")
    assert seen == [False, False, True]
    assert np.array_equal(a.audio, b.audio) and np.isfinite(c.audio).all()
    with pytest.raises(ValueError, match="vocoder_precision must be one of auto, half, float32"):
        tiny_speech_pipeline(wav, sr, emotion="sad", vocoder_precision="float16")
    assert len(seen) == 3


def test_stereo_any_rate_and_path_input(tiny_speech_pipeline, real_clip, tmp_path):
    wav, sr = sf.read(real_clip, dtype="float32")
    stereo = np.stack([wav, wav * 0.5], axis=1)
    path = tmp_path / "in.flac"
    sf.write(path, stereo, sr)
    out = tiny_speech_pipeline(str(path), emotion="sad", num_inference_steps=1, generator=g())
    assert out.audio.ndim == 1 and len(out.audio) > 22050


def test_curve_changes_the_embedding_over_time(tiny_speech_pipeline):
    spec = parse_emotion("sad -> angry over 2 s")
    emb = tiny_speech_pipeline.emotion_embedding(spec, 300)
    loud = 2  # loudness dimension
    assert emb[0, loud] < 0 < emb[-1, loud]
    with pytest.raises(ValueError, match="seconds"):
        tiny_speech_pipeline.emotion_embedding(parse_emotion("sad -> angry over 4 bars"), 10)


def test_intensity_scales_the_embedding(tiny_speech_pipeline):
    e = [tiny_speech_pipeline.emotion_embedding(parse_emotion(f"angry@{i}"), 1)[0] for i in (0, 0.5, 1)]
    assert np.allclose(e[0], 0) and np.allclose(e[2], 2 * e[1])


def test_long_input_windows_overlap_and_cover(tiny_speech_pipeline, real_clip, monkeypatch):
    """A recording longer than two model windows (WINDOW_FRAMES, about 11.9 s) is converted over
    its whole length: every window is sampled with its own stretch of the emotion curve and the
    cross-fades join them without a step; the output is as long as the input, its F0 and level
    move as asked in the first and in the last seconds, and no stretch of the speech drops out.

    The denoiser is replaced by one that knows the answer (its clean-sample prediction is the
    emotion embedding's F0 shift and loudness, as F0 and gain changes), so what is tested is the
    pipeline's windowing, joining and synthesis, not a model's quality."""
    from conditioning.audio import frame_rms_db, resample
    from generators.modeling_1d import window_starts
    from generators.speech.features import CHANGE_SCALES, HOP, SR, world_analyze

    clips = sorted(real_clip.parent.glob("*.wav"))  # the five LibriVox excerpts, 24.7 s at 16 kHz
    wav = resample(np.concatenate([sf.read(p, dtype="float32")[0] for p in clips]), 16000, SR)
    wav = wav * (0.25 / np.abs(wav).max())  # room below the limiter for the anger's 7 dB
    f0_ch, gain_ch = CHANGES.index("f0_st"), CHANGES.index("gain_db")
    alphas = tiny_speech_pipeline.scheduler.alphas_cumprod
    n_emotion = len(PROSODY) + 1  # the emotion embedding and its on/off flag end the condition

    def knows_the_answer(x, t, cond, spk):  # (B, C, T): the v-prediction whose clean sample is x0
        emb = cond[:, -n_emotion:-1]
        x0 = torch.zeros_like(x)
        x0[:, f0_ch] = emb[:, PROSODY.index("f0_shift")]
        x0[:, gain_ch] = emb[:, PROSODY.index("loudness")]
        a = alphas[int(t)]
        return (a.sqrt() * x - x0) / (1 - a).sqrt()

    class NoSpeaker:  # the speaker embedding plays no part here (GE2E on 25 s takes seconds)
        def embed(self, wav, sr):
            return np.zeros(256, np.float32)

    monkeypatch.setattr(tiny_speech_pipeline.denoiser, "forward", knows_the_answer)
    monkeypatch.setattr(tiny_speech_pipeline, "_speaker", NoSpeaker())
    out = tiny_speech_pipeline(wav, SR, emotion="sad at 0 -> sad at 8 -> angry at 16 -> angry at 30 s",
                        num_inference_steps=2, guidance_scale=1.0, generator=g(), vocoder="world")

    # three overlapping windows whose cross-fades add up to the asked changes on every frame
    T = len(out.changes)
    starts = window_starts(T, WINDOW_FRAMES, OVERLAP_FRAMES)
    assert T > 2 * WINDOW_FRAMES and len(starts) == 3
    want = np.zeros_like(out.changes)
    want[:, f0_ch] = out.embedding[:, PROSODY.index("f0_shift")] * CHANGE_SCALES[f0_ch]
    want[:, gain_ch] = out.embedding[:, PROSODY.index("loudness")] * CHANGE_SCALES[gain_ch]
    np.testing.assert_allclose(out.changes, want, atol=1e-3)
    assert want[0, f0_ch] < -1 and want[0, gain_ch] < -3  # sad at the start
    assert want[-1, f0_ch] > 1 and want[-1, gain_ch] > 3  # angry at the end

    # the output: the input's length (to WORLD's last frame), not limited, so levels compare
    assert 0 <= len(out.audio) - len(wav) < HOP and out.limited_db == 0.0
    n = len(wav) // 1102 * 1102
    before, after = frame_rms_db(wav[:n], SR, 0.05), frame_rms_db(out.audio[:n], SR, 0.05)  # 50 ms
    frame = np.minimum((np.arange(len(before)) + 0.5) * 0.05 * SR / HOP, T - 1).astype(int)
    speech = before > before.max() - 20
    off = after - before - want[frame, gain_ch]  # dB away from the level change asked
    assert np.abs(off[speech]).max() < 15  # no speech frame drops out (a gap is 40 dB or more)
    for s in starts:  # each window's stretch at the level asked
        assert abs(np.median(off[speech & (frame >= s) & (frame < s + WINDOW_FRAMES)])) < 1.0, s
    for part in (slice(0, 6 * SR), slice(len(wav) - 6 * SR, len(wav))):  # first and last 6 s
        frames = slice(part.start // HOP, part.stop // HOP)
        in_part = speech & (frame >= frames.start) & (frame < frames.stop)
        level = np.median((after - before)[in_part])
        assert abs(level - np.median(want[frames, gain_ch])) < 1.0, (part, level)
        f0_in, f0_out = world_analyze(wav[part]).f0, world_analyze(out.audio[part]).f0
        voiced = (f0_in > 0) & (f0_out > 0)
        shift = np.median(12 * np.log2(f0_out[voiced] / f0_in[voiced]))
        assert voiced.sum() > 200 and abs(shift - np.median(want[frames, f0_ch])) < 0.3, (part, shift)


@pytest.mark.parametrize(
    "audio,match",
    [
        (np.zeros(22050, np.float32), "silent"),
        (np.zeros(100, np.float32), "long"),
        (np.full(22050 * 130, 0.1, np.float32), "maximum"),
    ],
)
def test_bad_audio_is_refused(tiny_speech_pipeline, audio, match):
    with pytest.raises(ValueError, match=match):
        tiny_speech_pipeline(audio, 22050, emotion="happy", num_inference_steps=1)


def test_bad_settings_are_refused(tiny_speech_pipeline, real_clip):
    with pytest.raises(ValueError, match="unknown emotion"):
        tiny_speech_pipeline(str(real_clip), emotion="blorp@2")
    with pytest.raises(ValueError, match="num_inference_steps"):
        tiny_speech_pipeline(str(real_clip), emotion="happy", num_inference_steps=0)
    with pytest.raises(ValueError, match="vocoder"):
        tiny_speech_pipeline(str(real_clip), emotion="happy", vocoder="griffin")


def test_save_and_load_round_trip(tiny_speech_pipeline, tmp_path):
    tiny_speech_pipeline.save_pretrained(tmp_path / "ckpt", fp16=True)
    pipe = EmotionVoiceConversionPipeline.from_pretrained(tmp_path / "ckpt")
    assert pipe.denoiser.dtype == torch.float32
    for a, b in zip(pipe.denoiser.parameters(), tiny_speech_pipeline.denoiser.parameters()):
        assert torch.allclose(a, b, atol=1e-2)
    assert pipe.direction_model.categories == tiny_speech_pipeline.direction_model.categories
    with pytest.raises(ValueError, match="not a speech checkpoint"):
        EmotionVoiceConversionPipeline.from_pretrained(tmp_path)


def test_limiter_keeps_peaks_under_the_ceiling_and_leaves_quiet_audio_alone():
    t = np.arange(22050) / 22050
    loud = (1.8 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    out = limit_peaks(loud, 22050)
    assert np.abs(out).max() <= 10 ** (-1 / 20) + 1e-6
    assert np.sqrt(np.mean(out**2)) > 0.5  # limited, not muted
    quiet = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    assert np.array_equal(limit_peaks(quiet, 22050), quiet)


def test_what_the_limiter_takes_is_measured_and_said(tiny_speech_pipeline, real_clip, monkeypatch):
    """12 dB louder asked of a recording that peaks at full scale: the limiter holds the peaks and
    the level it took off the converted speech is reported (``limited_db`` and a note); the same
    asked of a quiet recording loses nothing."""
    from generators.speech.features import CHANGE_SCALES

    def louder(states):
        out = []
        for state in states:
            x = np.zeros((len(state["request"].cond), len(CHANGES)), np.float32)
            x[:, CHANGES.index("gain_db")] = 12.0 / CHANGE_SCALES[CHANGES.index("gain_db")]
            out.append(x)
        return out

    monkeypatch.setattr(tiny_speech_pipeline, "_sample", louder)
    wav, sr = sf.read(real_clip, dtype="float32")
    hot = wav / np.abs(wav).max() * 0.99
    out = tiny_speech_pipeline(hot, sr, emotion="angry@1")
    assert out.limited_db > 3.0
    assert 20 * np.log10(np.abs(out.audio).max()) <= -1.0 + 1e-3
    assert any(f"took {out.limited_db:.1f} dB" in n for n in out.notes)
    quiet = tiny_speech_pipeline(hot * 0.02, sr, emotion="angry@1")
    assert quiet.limited_db == 0.0 and not any("limiter" in n for n in quiet.notes)


def test_level_taken_is_the_rms_ratio_in_db():
    x = np.linspace(-1, 1, 1000)
    assert level_taken_db(x, x / 2) == pytest.approx(20 * np.log10(2))
    assert level_taken_db(x, x) == 0.0 and level_taken_db(x[:0], x[:0]) == 0.0
