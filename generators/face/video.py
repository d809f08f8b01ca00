"""Talking-head video files: H.264/AAC mp4 out, exact stream facts and frames back in.

Everything goes through the static ffmpeg binary that the PyPI package imageio-ffmpeg ships
(``imageio_ffmpeg.get_ffmpeg_exe()``); there is no ffprobe beside it, so ``probe_video`` reads the
stream list from ``ffmpeg -i`` and counts frames and samples by decoding.

- ``write_mp4``: streams frames (any iterable, a generator included: never more than one frame
  in memory) to ffmpeg as raw RGB, encodes H.264 (libx264, yuv420p, ``+faststart`` so players can
  start before the whole file arrived) and muxes the audio as AAC. The video stream lasts exactly
  ``n_frames / fps``; the audio stream is kept whole (no ``-shortest``), so the caller makes
  ``n_frames = round(audio_seconds * fps)`` and the two differ by at most half a frame. The file
  appears under its final name only when complete (``conditioning.io.atomic_write``).
- ``probe_video``: size, rate, codecs, decoded frame count and per-stream durations.
- ``plays``: both streams decode with no error message.
- ``read_video_frames`` / ``read_video_audio``: frames as HxWx3 uint8 RGB, audio as mono float32.

AAC priming: the encoder delays its output by 1024 samples and pads the last frame; ffmpeg's mp4
muxer records both in an edit list, and ffmpeg's decoder honours it, so the decoded audio has
exactly the samples that went in (checked by the tests). Players that ignore edit lists hear up
to 1024 samples (46 ms at 22.05 kHz) of extra silence at the start.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from conditioning.io import atomic_write, check_writable

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
# sample rates the built-in AAC encoder accepts; other rates are converted to the next one up
AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200,
             96000)


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - part of the "face" extra
        raise FileNotFoundError(
            "video needs the PyPI package imageio-ffmpeg (pip install 'affectstudio[face]')"
        ) from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def _rate(fps: float) -> str:
    """``fps`` as the exact fraction ffmpeg reads (25 -> "25/1", 29.97 -> "2997/100")."""
    if not (isinstance(fps, (int, float, Fraction)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    f = Fraction(fps).limit_denominator(100000)
    return f"{f.numerator}/{f.denominator}"


def _check_audio(audio, sample_rate) -> np.ndarray:
    if sample_rate is None or int(sample_rate) <= 0 or int(sample_rate) != sample_rate:
        raise ValueError(f"audio needs a positive integer sample_rate, got {sample_rate!r}")
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"audio must be a non-empty mono array (samples,), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio contains NaN or inf")
    return a


def _check_frame(frame, shape: tuple[int, int, int] | None, index: int) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
        raise ValueError(f"frame {index}: expected an HxWx3 uint8 RGB array, got "
                         f"{f.dtype} of shape {f.shape}")
    if shape is not None and f.shape != shape:
        raise ValueError(f"frame {index} has shape {f.shape}; the first frame had {shape}")
    return f


def _pad_even(f: np.ndarray) -> np.ndarray:
    h, w = f.shape[:2]
    return np.pad(f, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _log_head(log: Path, lines: int = 3) -> str:
    """The first lines of ffmpeg's error log (the cause; later lines are the fallout)."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[:lines])


def write_mp4(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
    preset: str = "veryfast",
    *,
    pad_odd: bool = False,
    audio_bitrate: str = "128k",
) -> Path:
    """Encode RGB frames (and mono audio) to an H.264/AAC mp4 at ``path``; return the path.

    ``frames``: iterable of (H, W, 3) uint8 RGB arrays, all the same size, consumed once and
    streamed to the encoder. H.264 in yuv420p needs an even width and height: an odd size raises
    ``ValueError`` unless ``pad_odd`` repeats the last row/column to make it even.
    ``audio``: (samples,) float in [-1, 1] at ``sample_rate``, muxed as AAC whole.
    The video stream lasts ``n_frames / fps`` exactly. If anything fails (a frame generator that
    raises, an encoder error, an interrupt) nothing is left under ``path`` nor beside it.
    """
    path = check_writable(path)
    rate = _rate(fps)
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"crf must be in 0..51 (lower is better quality), got {crf!r}")
    if preset not in X264_PRESETS:
        raise ValueError(f"unknown x264 preset {preset!r}; accepted: {', '.join(X264_PRESETS)}")
    wav = _check_audio(audio, sample_rate) if audio is not None else None

    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("no frames to write")
    first = _check_frame(first, None, 0)
    shape = first.shape
    h, w = shape[:2]
    if (h % 2 or w % 2) and not pad_odd:
        raise ValueError(f"H.264 (yuv420p) needs an even frame size, got {w}x{h}; crop or pad "
                         "the frames, or pass pad_odd=True")
    out_h, out_w = h + h % 2, w + w % 2

    with tempfile.TemporaryDirectory(prefix="affect-mp4-") as work, atomic_write(path) as tmp:
        cmd = [ffmpeg_exe(), "-y", "-nostdin", "-hide_banner", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{out_w}x{out_h}",
               "-framerate", rate, "-i", "pipe:0"]
        if wav is not None:
            import soundfile as sf

            wav_path = str(Path(work) / "audio.wav")
            sf.write(wav_path, wav, int(sample_rate), subtype="FLOAT")
            cmd += ["-i", wav_path]
        cmd += ["-map", "0:v:0", "-c:v", "libx264", "-preset", preset, "-crf", str(int(crf)),
                "-pix_fmt", "yuv420p"]
        if wav is not None:
            sr = int(sample_rate)
            cmd += ["-map", "1:a:0", "-c:a", "aac", "-b:a", audio_bitrate, "-ac", "1"]
            if sr not in AAC_RATES:
                cmd += ["-ar", str(next((r for r in AAC_RATES if r >= sr), AAC_RATES[-1]))]
        cmd += ["-movflags", "+faststart", "-f", "mp4", tmp]

        log = Path(work) / "ffmpeg.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=err)
        try:
            for i, frame in enumerate(itertools.chain([first], it)):
                f = _check_frame(frame, shape, i)
                if pad_odd:
                    f = _pad_even(f)
                try:
                    proc.stdin.write(memoryview(np.ascontiguousarray(f)).cast("B"))
                except BrokenPipeError:
                    proc.wait()
                    raise RuntimeError(f"ffmpeg stopped at frame {i} (exit {proc.returncode}): "
                                       f"{_log_head(log)}") from None
            try:
                proc.stdin.close()  # flushes the last frame
            except BrokenPipeError:
                pass  # ffmpeg quit early: its exit status and log say why
            if proc.wait() != 0:
                raise RuntimeError(f"ffmpeg failed (exit {proc.returncode}): {_log_head(log)}")
        except BaseException:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdin and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
    return path


@dataclass
class VideoInfo:
    """What a video file holds. Durations in seconds from decoded frames and samples;
    ``duration`` is the longer of the two streams (the playing time). Audio fields are None
    (durations 0.0) when the file has no audio stream."""

    width: int
    height: int
    fps: float
    n_frames: int
    video_codec: str
    audio_codec: str | None
    sample_rate: int | None
    duration_video: float
    duration_audio: float
    duration: float


_STREAM = re.compile(r"^\s*Stream #\d+:\d+\S*: (Video|Audio): (\w+)(.*)$")


def _parse_streams(stderr: str) -> tuple[dict | None, dict | None]:
    """The first video and first audio stream listed under ``Input #0`` in ffmpeg's log."""
    video = audio = None
    in_input = False
    for line in stderr.splitlines():
        if line.startswith("Input #0"):
            in_input = True
            continue
        if in_input and (line.startswith("Output #") or line.startswith("Stream mapping")):
            break
        m = _STREAM.match(line) if in_input else None
        if not m:
            continue
        kind, codec, rest = m.groups()
        if kind == "Video" and video is None and "attached pic" not in rest:
            size = re.search(r"[ ,](\d+)x(\d+)[ ,\[]", rest + " ")
            fps = re.search(r"([\d.]+)(k?) fps", rest) or re.search(r"([\d.]+)(k?) tbr", rest)
            video = {"codec": codec,
                     "width": int(size.group(1)) if size else 0,
                     "height": int(size.group(2)) if size else 0,
                     "fps": float(fps.group(1)) * (1000 if fps.group(2) else 1) if fps else 0.0}
        elif kind == "Audio" and audio is None:
            sr = re.search(r"(\d+) Hz", rest)
            audio = {"codec": codec, "sample_rate": int(sr.group(1)) if sr else None}
    return video, audio


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give a video file")
    return path


def probe_video(path: str | Path) -> VideoInfo:
    """Streams, codecs and exact lengths of a video file, by decoding it once.

    One ffmpeg run lists the input streams (stderr) and writes a ``framecrc`` line per decoded
    video frame and audio block (stdout): the frame count is the number of video lines, the
    durations are the summed frame/sample durations in each stream's time base.
    """
    path = _existing(path)
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-i", str(path),
           "-map", "0:v:0?", "-map", "0:a:0?", "-fps_mode", "passthrough", "-f", "framecrc", "-"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    stderr = proc.stderr.decode(errors="replace")
    video, audio = _parse_streams(stderr)
    if video is None:
        last = stderr.strip().splitlines()[-1:] or ["no output"]
        raise ValueError(f"{str(path)!r} has no readable video stream ({last[0]})")

    tb: dict[int, Fraction] = {}
    count: dict[int, int] = {}
    total: dict[int, int] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith("#tb "):
            idx, val = line[4:].split(":", 1)
            tb[int(idx)] = Fraction(val.strip())
        elif line and not line.startswith("#"):
            parts = [p.strip() for p in line.split(",")]
            s = int(parts[0])
            count[s] = count.get(s, 0) + 1
            total[s] = total.get(s, 0) + int(parts[3])
    # output stream 0 is the video (mapped first), 1 the audio when there is one
    n_frames = count.get(0, 0)
    dur_v = float(total.get(0, 0) * tb.get(0, Fraction(0)))
    dur_a = float(total.get(1, 0) * tb.get(1, Fraction(0))) if audio else 0.0
    return VideoInfo(
        width=video["width"], height=video["height"], fps=video["fps"], n_frames=n_frames,
        video_codec=video["codec"], audio_codec=audio["codec"] if audio else None,
        sample_rate=audio["sample_rate"] if audio else None,
        duration_video=dur_v, duration_audio=dur_a, duration=max(dur_v, dur_a),
    )


def plays(path: str | Path) -> bool:
    """True when ffmpeg decodes every video and audio stream of ``path`` with no error logged."""
    path = Path(path)
    if not path.is_file():
        return False
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v?",
           "-map", "0:a?", "-f", "null", "-"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return proc.returncode == 0 and not proc.stderr.strip()


def read_video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decoded frames of the first video stream, one (H, W, 3) uint8 RGB array at a time."""
    import imageio_ffmpeg

    path = _existing(path)
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24",
                                     output_params=["-map", "0:v:0", "-fps_mode", "passthrough"])
    try:
        meta = next(gen)
        w, h = meta["size"]
        for buf in gen:
            yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
    finally:
        gen.close()


def read_video_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """The first audio stream decoded to mono float32 (samples,), and its sample rate."""
    import soundfile as sf

    path = _existing(path)
    with tempfile.TemporaryDirectory(prefix="affect-audio-") as work:
        out = Path(work) / "audio.wav"
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
               "-ac", "1", "-c:a", "pcm_f32le", str(out)]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if proc.returncode != 0 or not out.exists():
            msg = " ".join(proc.stderr.decode(errors="replace").split())[-300:]
            raise ValueError(f"cannot read audio from {str(path)!r}: {msg or 'no audio stream'}")
        data, sr = sf.read(str(out), dtype="float32", always_2d=True)
    return data[:, 0], int(sr)
