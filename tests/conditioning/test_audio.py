"""Audio in: formats, rates, channels, and one-line refusals of bad files."""

import numpy as np
import pytest
import soundfile as sf

from conditioning.audio import load_audio, resample, save_audio, speech_bounds


def tone(seconds=1.0, sr=16000, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_reads_common_formats_at_any_rate_and_channel_count(tmp_path, suffix):
    x = np.stack([tone(sr=44100), tone(sr=44100) * 0.5], axis=1)
    path = tmp_path / f"a{suffix}"
    sf.write(path, x, 44100)
    a = load_audio(path, target_sr=22050)
    assert a.sample_rate == 22050 and a.wav.ndim == 1
    assert abs(a.duration - 1.0) < 0.06
    assert 0.15 < np.abs(a.wav).max() < 0.3  # mean of the two channels: 0.225


def test_resample_keeps_a_tone_and_its_length():
    y = resample(tone(sr=16000), 16000, 22050)
    assert len(y) == 22050
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) - 220) <= 1


@pytest.mark.parametrize(
    "content,match",
    [(b"", "empty"), (b"not audio at all" * 100, "cannot read"), (b"RIFF\x00\x00", "cannot read")],
)
def test_bad_files_are_refused_in_one_line(tmp_path, content, match):
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        load_audio(path)
    assert "\n" not in str(info.value)


def test_silent_short_and_long_audio_are_refused():
    with pytest.raises(ValueError, match="silent"):
        load_audio(np.zeros(16000, np.float32), 16000)
    with pytest.raises(ValueError, match="at least"):
        load_audio(tone(0.1), 16000)
    with pytest.raises(ValueError, match="maximum"):
        load_audio(tone(3.0), 16000, max_seconds=2)
    with pytest.raises(ValueError, match="NaN"):
        load_audio(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(FileNotFoundError):
        load_audio("/no/such/file.wav")


def test_a_dc_offset_is_removed_and_is_not_sound(tmp_path):
    """A recorder's constant offset is taken out on reading: it is not loudness (a silent file
    with an offset is still silent), and nothing downstream steps away from it at a join."""
    path = tmp_path / "dc.wav"
    sf.write(path, tone() * 0.5 + 0.3, 16000, subtype="PCM_16")
    a = load_audio(path)
    assert abs(a.wav.mean()) < 1e-3
    assert 0.13 < np.abs(a.wav).max() < 0.17  # the tone itself is left as it was
    with pytest.raises(ValueError, match="silent"):
        load_audio(np.full(16000, 0.2, np.float32), 16000)
    clean = tone()  # an ordinary recording (mean well under the threshold) is read exactly
    assert np.array_equal(load_audio(clean, 16000).wav, clean)


def test_speech_bounds_find_the_loud_part():
    sr = 16000
    x = np.concatenate([np.zeros(sr), tone(1.0, sr), np.zeros(sr)])
    s, e = speech_bounds(x, sr, margin_s=0.0)
    assert abs(s - sr) <= 0.03 * sr and abs(e - 2 * sr) <= 0.03 * sr


def test_save_audio_is_atomic_and_checks_the_type(tmp_path):
    save_audio(tmp_path / "o.wav", tone(), 16000)
    assert sf.info(tmp_path / "o.wav").samplerate == 16000
    with pytest.raises(ValueError, match="accepted output types"):
        save_audio(tmp_path / "o.xyz", tone(), 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.wav"]
