"""mp4 writing and reading: H.264/AAC, exact frame count and durations, atomic output."""

import numpy as np
import pytest

from generators.face.video import (
    plays,
    probe_video,
    read_video_audio,
    read_video_frames,
    write_mp4,
)

SR = 22050
FPS = 25


def sine(seconds=0.4, sr=SR, amp=0.5, hz=440.0):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def clip(n=10, h=48, w=64):
    """Smooth moving gradients (easy for H.264, so decoded frames stay close to the input)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 3 + 8 * i) % 256, (y * 4 + 5 * i) % 256,
                               np.full_like(x, 128)], -1).astype(np.uint8) for i in range(n)])


def test_clip_round_trip(tmp_path):
    frames, audio = clip(), sine(0.4)
    out = write_mp4(tmp_path / "a.mp4", frames, FPS, audio, SR)
    assert out == tmp_path / "a.mp4" and out.is_file()
    info = probe_video(out)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.n_frames, info.fps) == (64, 48, 10, 25.0)
    assert info.sample_rate == SR
    assert info.duration_video == pytest.approx(0.4, abs=1e-9)  # exactly n_frames / fps
    # the edit list removes the AAC priming and end padding: the samples that went in
    assert abs(info.duration_audio - 0.4) < 1 / FPS
    assert abs(info.duration - 0.4) < 1 / FPS
    assert plays(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]  # no temp files left

    back = list(read_video_frames(out))
    assert len(back) == 10 and back[0].shape == (48, 64, 3) and back[0].dtype == np.uint8
    assert np.abs(back[3].astype(int) - frames[3]).mean() < 6  # lossy, but the same picture
    wav, sr = read_video_audio(out)
    assert sr == SR and wav.dtype == np.float32 and len(wav) == len(audio)
    rms = np.sqrt(np.mean(wav[2000:6000].astype(np.float64) ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_generator_input_and_no_audio(tmp_path):
    out = write_mp4(tmp_path / "g.mp4", (f for f in clip(7)), FPS)
    info = probe_video(out)
    assert info.n_frames == 7 and info.audio_codec is None and info.duration_audio == 0.0
    assert info.duration == pytest.approx(7 / FPS)
    assert plays(out)


def test_audio_longer_than_frames_is_kept_whole(tmp_path):
    # 0.37 s of audio -> round(9.25) = 9 frames (0.36 s): the audio must not be cut to the video
    out = write_mp4(tmp_path / "l.mp4", clip(9), FPS, sine(0.37, sr=16000), 16000)
    info = probe_video(out)
    assert info.duration_video == pytest.approx(0.36)
    assert info.duration_audio == pytest.approx(0.37, abs=1e-4)
    assert info.duration == pytest.approx(0.37, abs=1e-4)


def test_odd_size_raises_or_pads(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_mp4(tmp_path / "o.mp4", clip(3, h=47, w=64), FPS)
    assert list(tmp_path.iterdir()) == []
    out = write_mp4(tmp_path / "p.mp4", clip(3, h=47, w=63), FPS, pad_odd=True)
    info = probe_video(out)
    assert (info.width, info.height, info.n_frames) == (64, 48, 3)


def test_bad_frames_raise_clearly(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(tmp_path / "f.mp4", clip(2).astype(np.float32), FPS)
    mixed = [clip(1)[0], clip(1, h=32, w=32)[0]]
    with pytest.raises(ValueError, match="first frame"):
        write_mp4(tmp_path / "m.mp4", mixed, FPS)
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(tmp_path / "e.mp4", [], FPS)
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_stream_leaves_nothing(tmp_path):
    def broken():
        for i, f in enumerate(clip(10)):
            if i == 3:
                raise RuntimeError("renderer crashed")
            yield f

    (tmp_path / "keep").mkdir()
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_mp4(tmp_path / "keep" / "x.mp4", broken(), FPS, sine(0.4), SR)
    assert list((tmp_path / "keep").iterdir()) == []  # no x.mp4 and no temporary file


def test_failure_keeps_an_older_file(tmp_path):
    target = tmp_path / "x.mp4"
    write_mp4(target, clip(4), FPS)
    before = target.read_bytes()

    def broken():
        yield clip(1)[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_mp4(target, broken(), FPS)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]


def test_probe_and_plays_on_bad_files(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    assert not plays(junk)
    assert not plays(tmp_path / "missing.mp4")
    with pytest.raises(ValueError):
        probe_video(junk)
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "missing.mp4")


def test_encoder_error_is_reported_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        write_mp4(tmp_path / "p.mp4", clip(3), FPS, preset="nope")
    with pytest.raises(RuntimeError, match="ffmpeg"):
        write_mp4(tmp_path / "b.mp4", clip(3), FPS, sine(0.12), SR, audio_bitrate="lots")
    assert list(tmp_path.iterdir()) == []
