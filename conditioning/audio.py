"""Audio in: any common file or array -> mono float32 at the rate a model needs, with checks.

Files are read with soundfile (its bundled libsndfile reads wav, flac, ogg/vorbis, opus and mp3);
raw headerless PCM is refused with a clear message. Several channels are mixed down to mono,
the rate is converted with torchaudio's band-limited resampler, and every change is logged.
Bad input raises ``ValueError`` with one line saying what was wrong and what is accepted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conditioning.io import native_stderr_to_log

logger = logging.getLogger(__name__)

ACCEPTED = "wav, flac, ogg, opus or mp3 (any sample rate, mono or multichannel)"
MIN_SECONDS = 0.3
SILENCE_DBFS = -60.0  # a file whose loudest 50 ms stays below this is called silent
#: A mean sample value beyond this (-60 dBFS) is a recorder's DC offset and is removed on reading.
DC_OFFSET_MAX = 1e-3


@dataclass
class Audio:
    """A mono waveform in [-1, 1] and its sample rate (plus where it came from)."""

    wav: np.ndarray
    sample_rate: int
    source: str = "array"

    @property
    def duration(self) -> float:
        return len(self.wav) / self.sample_rate


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed-sinc), float32 in and out."""
    if orig_sr == target_sr:
        return np.asarray(wav, dtype=np.float32)
    import torch
    import torchaudio

    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    return torchaudio.functional.resample(x, int(orig_sr), int(target_sr)).numpy()


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give an audio file ({ACCEPTED})")
    if path.stat().st_size == 0:
        raise ValueError(f"audio file {str(path)!r} is empty; accepted: {ACCEPTED}")
    try:
        # the mp3 decoder inside libsndfile prints notes ("Hit end of (available) data during
        # resync") straight to the process's stderr: a refused file still gets one line
        with native_stderr_to_log(logger, "audio decoder"):
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's errors: unknown format, truncated, corrupt
        reason = " ".join(str(exc).split())
        if "does not exist" in reason:  # what libsndfile says of an mp3 with no MPEG frames
            reason = "no audio stream found in it"
        raise ValueError(
            f"cannot read {str(path)!r} as audio ({reason}); accepted: {ACCEPTED}"
        ) from None
    return data, int(sr)


def load_audio(
    source: str | Path | np.ndarray,
    sample_rate: int | None = None,
    *,
    target_sr: int | None = None,
    max_seconds: float | None = None,
    min_seconds: float = MIN_SECONDS,
    allow_silent: bool = False,
) -> Audio:
    """Read and check audio; mix to mono and resample to ``target_sr`` when given.

    ``source`` is a path, or an array (``(samples,)``, ``(samples, channels)`` or
    ``(channels, samples)`` with few channels) together with its ``sample_rate``.
    """
    if isinstance(source, (str, Path)):
        data, sr = _read_file(Path(source))
        name = str(source)
    else:
        if sample_rate is None:
            raise ValueError("an audio array needs its sample_rate")
        data = np.asarray(source, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        elif data.ndim == 2 and data.shape[0] < data.shape[1] and data.shape[0] <= 8:
            data = data.T  # (channels, samples) -> (samples, channels)
        elif data.ndim != 2:
            raise ValueError(f"an audio array must be 1-D or 2-D, got shape {data.shape}")
        sr, name = int(sample_rate), "array"
    if not 1000 <= sr <= 384000:
        raise ValueError(f"sample rate {sr} Hz is out of range; accepted: 1000-384000 Hz")
    if data.shape[0] == 0:
        raise ValueError(f"audio {name!r} has no samples; accepted: {ACCEPTED}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"audio {name!r} contains NaN or infinite samples")
    duration = data.shape[0] / sr
    if duration < min_seconds:
        raise ValueError(f"audio {name!r} is {duration:.2f} s long; at least {min_seconds} s needed")
    if max_seconds is not None and duration > max_seconds:
        raise ValueError(
            f"audio {name!r} is {duration:.1f} s long; the maximum is {max_seconds:g} s "
            "(split it into parts)"
        )
    if data.shape[1] > 1:
        logger.info("%s: mixing %d channels down to mono", name, data.shape[1])
    wav = data.mean(axis=1).astype(np.float32)
    offset = float(wav.mean(dtype=np.float64))
    if abs(offset) > DC_OFFSET_MAX:
        # a constant offset (a recorder's DC) is no sound: it would count as loudness, and a
        # generator's output, which has none, would step away from it at every join
        logger.info("%s: DC offset %.4f removed", name, offset)
        wav = (wav - offset).astype(np.float32)
    peak = float(np.abs(wav).max())
    if peak > 1.0:
        logger.info("%s: samples exceed full scale (peak %.2f); scaled to 0.99", name, peak)
        wav = wav * (0.99 / peak)
    if not allow_silent and loudest_dbfs(wav, sr) < SILENCE_DBFS:
        raise ValueError(
            f"audio {name!r} is silent (loudest 50 ms below {SILENCE_DBFS:g} dBFS); "
            "give a recording with speech in it"
        )
    if target_sr is not None and target_sr != sr:
        logger.info("%s: resampling %d Hz -> %d Hz", name, sr, target_sr)
        wav, sr = resample(wav, sr, target_sr), int(target_sr)
    return Audio(wav=wav, sample_rate=sr, source=name)


def frame_rms_db(wav: np.ndarray, sr: int, frame_s: float = 0.05) -> np.ndarray:
    """RMS level in dBFS of consecutive frames of ``frame_s`` seconds."""
    n = max(1, int(sr * frame_s))
    k = max(1, len(wav) // n)
    frames = np.asarray(wav[: k * n], dtype=np.float64).reshape(k, n)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def loudest_dbfs(wav: np.ndarray, sr: int) -> float:
    return float(frame_rms_db(wav, sr).max())


def speech_bounds(wav: np.ndarray, sr: int, threshold_db: float = 35.0, margin_s: float = 0.08):
    """(start, end) samples of the part louder than (loudest 20 ms - ``threshold_db``).

    Leading and trailing silence outside it, less a small margin, can be set aside.
    """
    levels = frame_rms_db(wav, sr, 0.02)
    hop20 = max(1, int(sr * 0.02))
    active = np.flatnonzero(levels > levels.max() - threshold_db)
    if active.size == 0:
        return 0, len(wav)
    start = max(0, active[0] * hop20 - int(margin_s * sr))
    end = min(len(wav), (active[-1] + 1) * hop20 + int(margin_s * sr))
    return int(start), int(end)


def save_audio(path: str | Path, wav: np.ndarray, sample_rate: int) -> None:
    """Write a wav/flac/ogg atomically (format from the suffix), 16-bit PCM for wav."""
    import soundfile as sf

    from conditioning.io import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    formats = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
    if suffix not in formats:
        raise ValueError(f"cannot write {str(path)!r}: accepted output types are .wav, .flac, .ogg")
    fmt, subtype = formats[suffix]
    with atomic_write(path, "wb") as tmp:
        sf.write(tmp, np.clip(np.asarray(wav, dtype=np.float32), -1, 1), int(sample_rate),
                 format=fmt, subtype=subtype)
