"""Acoustic features of the speech medium, and the renderer that applies a prosody change.

Analysis uses the WORLD vocoder (Morise, Yokomori & Ozawa 2016, IEICE Trans. E99-D(7)) through
``pyworld``: F0 by DIO refined by StoneMask, the F0-adaptive spectral envelope (CheapTrick) and
band aperiodicity (D4C), at the HiFi-GAN frame rate (hop 256 at 22,050 Hz, 11.6 ms), so one frame
of every feature is one mel frame.

- **content**: 20 mel-cepstral coefficients of the WORLD spectral envelope, mean/variance
  normalised over the utterance. The envelope is estimated pitch-adaptively, so the cepstrum
  carries the phonetic content (formants) and little of the F0; normalising removes level and
  channel.
- **prosody**: F0 in semitones re the utterance median (0 where unvoiced, interpolated across
  gaps), a voicing flag, the frame energy in dB re the utterance median, and the time to the end of
  voicing (for final contours).
- **speaker**: the GE2E embedding (``conditioning.speaker``).

``apply_prosody`` realises per-frame changes (F0 in semitones, gain in dB, spectral tilt, added
aperiodicity, local speaking rate, a factor on the formant frequencies) on the WORLD parameters;
``synthesize`` turns them back into a waveform (WORLD), whose mel spectrogram the HiFi-GAN vocoder then re-synthesises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generators.speech.vocoder import MEL

SR = MEL.sample_rate
HOP = MEL.hop
FRAME_MS = 1000.0 * HOP / SR
N_CEP = 20
#: per-frame change channels the model generates, and the scale each is standardised by
CHANGES = ("f0_st", "gain_db", "tilt", "breath", "rate", "formant")
CHANGE_SCALES = np.array([3.0, 4.0, 2.0, 0.15, 0.1, 0.03], dtype=np.float32)
PROSODY_FEATURES = ("f0_rel", "voiced", "energy_rel", "to_end")
FINAL_SECONDS = 0.35


@dataclass
class WorldFeatures:
    f0: np.ndarray  # (T,) Hz, 0 = unvoiced
    sp: np.ndarray  # (T, 513) power spectral envelope
    ap: np.ndarray  # (T, 513) aperiodicity 0..1
    # after apply_prosody: the source frame each frame came from, and the gain/tilt applied
    pos: np.ndarray | None = None
    gain_db: np.ndarray | None = None
    tilt: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return len(self.f0)


def world_analyze(wav: np.ndarray, f0_floor: float = 60.0, f0_ceil: float = 700.0) -> WorldFeatures:
    """WORLD analysis of a mono 22,050 Hz waveform at the mel frame rate."""
    import pyworld as pw

    x = np.ascontiguousarray(wav, dtype=np.float64)
    f0, t = pw.dio(x, SR, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, SR)
    f0 = _clean_f0(f0)
    sp = pw.cheaptrick(x, f0, t, SR)
    ap = pw.d4c(x, f0, t, SR)
    return WorldFeatures(f0=f0, sp=sp, ap=ap)


def _clean_f0(f0: np.ndarray) -> np.ndarray:
    """Drop isolated voiced frames (octave errors at onsets), keep runs of >= 3 frames."""
    v = f0 > 0
    out = f0.copy()
    start = None
    for i in range(len(v) + 1):
        on = i < len(v) and v[i]
        if on and start is None:
            start = i
        elif not on and start is not None:
            if i - start < 3:
                out[start:i] = 0.0
            start = None
    return out


def synthesize(feats: WorldFeatures) -> np.ndarray:
    import pyworld as pw

    y = pw.synthesize(
        np.ascontiguousarray(feats.f0, dtype=np.float64),
        np.ascontiguousarray(feats.sp, dtype=np.float64),
        np.ascontiguousarray(feats.ap, dtype=np.float64),
        SR,
        frame_period=FRAME_MS,
    )
    return y.astype(np.float32)


def _freqs(n_bins: int) -> np.ndarray:
    return np.linspace(0, SR / 2, n_bins)


def _mel_cepstrum(sp: np.ndarray, n: int = N_CEP) -> np.ndarray:
    """Cepstrum of the log envelope on a mel-warped axis (DCT-II of 40 mel-band log energies)."""
    freqs = _freqs(sp.shape[1])
    mel = 2595 * np.log10(1 + freqs / 700)
    edges = np.linspace(mel[1], mel[-1], 42)
    centres = 700 * (10 ** (edges / 2595) - 1)
    bands = np.zeros((40, len(freqs)))
    for i in range(40):
        lo, c, hi = centres[i], centres[i + 1], centres[i + 2]
        bands[i] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    logmel = np.log(sp @ bands.T + 1e-10)
    k = np.arange(40)
    dct = np.cos(np.pi / 40 * (k[None, :] + 0.5) * np.arange(1, n + 1)[:, None])
    return logmel @ dct.T  # (T, n), c0 (level) left out


def energy_db(sp: np.ndarray) -> np.ndarray:
    return 10 * np.log10(sp.sum(axis=1) + 1e-10)


def content_features(feats: WorldFeatures) -> np.ndarray:
    c = _mel_cepstrum(feats.sp)
    return ((c - c.mean(0)) / (c.std(0) + 1e-5)).astype(np.float32)


def interp_unvoiced(values: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    if not voiced.any():
        return np.zeros_like(values)
    idx = np.arange(len(values))
    return np.interp(idx, idx[voiced], values[voiced])


def prosody_features(feats: WorldFeatures) -> np.ndarray:
    """(T, 4): F0 re median (st, interpolated), voiced flag, energy re median (dB/10), to-end."""
    voiced = feats.f0 > 0
    st = np.zeros(feats.frames)
    if voiced.any():
        st_v = 12 * np.log2(feats.f0[voiced] / np.median(feats.f0[voiced]))
        st[voiced] = st_v
        st = interp_unvoiced(st, voiced)
    e = energy_db(feats.sp)
    e_rel = np.clip(e - np.median(e[e > e.max() - 40]), -40, 15) / 10.0
    return np.stack([st / 3.0, voiced.astype(float), e_rel, to_end_channel(voiced)],
                    axis=1).astype(np.float32)


def seconds_to_last_voiced(voiced: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(voiced)
    last = idx[-1] if idx.size else len(voiced) - 1
    return (last - np.arange(len(voiced))) * FRAME_MS / 1000.0


def to_end_channel(voiced: np.ndarray) -> np.ndarray:
    """The model's time-to-end input: seconds to the last voiced frame, held within [-1, 2]."""
    return np.clip(seconds_to_last_voiced(voiced), -1.0, 2.0)


def final_ramp(voiced: np.ndarray) -> np.ndarray:
    """0 -> 1 over the last FINAL_SECONDS of voicing (0 elsewhere)."""
    to_end = seconds_to_last_voiced(voiced)
    return np.clip(1.0 - to_end / FINAL_SECONDS, 0.0, 1.0) * (to_end >= 0)


def rule_changes(pros: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Per-frame changes (T, 6) that realise prosody-change vectors ``raw`` on an utterance.

    ``pros`` is the utterance's ``prosody_features`` (T, 4).
    ``raw`` is (9,) for the utterance or (T, 9) per frame, in the order of
    ``profiles.PROSODY``. This is the literature profile made concrete on one utterance: it is
    what the embedded default is trained to generate (training.py), and what the recognizer's
    training corpus is rendered with.
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 1:
        raw = np.repeat(raw[None], len(pros), axis=0)
    st, voiced, e_rel = pros[:, 0] * 3.0, pros[:, 1] > 0, pros[:, 2] * 10.0
    # After the last voiced frame the final movement holds its end value: there is no F0 to move
    # there, and a target that jumped back to the range-scaled contour at the last voiced frame
    # (+9 -> +1 st for surprise on a spoken name) taught the smooth denoiser a step it cannot
    # make, so it pulled the last voiced frames down towards the unvoiced tail.
    ramp = np.where(seconds_to_last_voiced(voiced) < 0, 1.0, final_ramp(voiced))
    f0_shift, f0_range, loud, rate, tilt, breath, final, dyn, formant = raw.T
    # The range change scales the contour's excursions everywhere but in the final stretch, which
    # the final movement takes over: scaled there too, a declarative fall widened by surprise's
    # range (x1.8) would cancel its +5 st rise (the phrase would end no higher than its middle).
    d_st = f0_shift + (np.exp(f0_range) - 1.0) * st * (1.0 - ramp) + final * ramp
    gain = loud + dyn * np.clip(e_rel, -20, 8)
    return np.stack([d_st, gain, tilt, breath, rate, formant], axis=1).astype(np.float32)


def warp_envelope(log_sp: np.ndarray, log_factor: np.ndarray) -> np.ndarray:
    """The log envelope (T, F) with its frequency axis scaled by ``exp(log_factor)`` per frame: a
    factor above 1 moves every formant up in proportion (what a shorter vocal tract does); the
    top bin is held beyond the Nyquist frequency."""
    T, F = log_sp.shape
    src = np.arange(F)[None] / np.exp(np.asarray(log_factor, dtype=np.float64))[:, None]
    src = np.clip(src, 0, F - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, F - 1)
    w = src - i0
    rows = np.arange(T)[:, None]
    return log_sp[rows, i0] * (1 - w) + log_sp[rows, i1] * w


def _flat_log_ltas(sp: np.ndarray, frames: np.ndarray, band: np.ndarray) -> np.ndarray:
    """The mean log envelope of ``frames`` in ``band``, its straight-line trend (on a log-frequency
    axis) removed: what is left is the formant pattern, not the level or the tilt."""
    y = np.log(np.maximum(sp[frames], 1e-30)).mean(0)[band]
    x = np.log(np.arange(len(sp[0]))[band])
    return y - np.polyval(np.polyfit(x, y, 1), x)


def formant_factor(sp_a: np.ndarray, voiced_a: np.ndarray, sp_b: np.ndarray, voiced_b: np.ndarray,
                   max_log: float = 0.12) -> float:
    """The log factor on frequency that best maps envelope ``a``'s formants onto ``b``'s: the
    long-term mean envelopes of the voiced frames (300 Hz - 4 kHz, trend removed) compared over a
    grid of warps (0.25 % steps). For two renditions of the same words (a recording and its
    conversion, or a parallel pair) it measures how far the formants moved; it needs no
    alignment, as both say the same phones."""
    if voiced_a.sum() < 5 or voiced_b.sum() < 5:
        return 0.0
    freqs = _freqs(sp_a.shape[1])
    band = (freqs >= 300) & (freqs <= 4000)
    target = _flat_log_ltas(sp_b, voiced_b, band)
    log_a = np.log(np.maximum(sp_a[voiced_a], 1e-30)).mean(0, keepdims=True)
    grid = np.arange(-max_log, max_log + 1e-9, 0.0025)
    scores = []
    for g in grid:
        warped = np.exp(warp_envelope(log_a, np.array([g])))
        cand = _flat_log_ltas(warped, np.array([0]), band)
        scores.append(np.corrcoef(cand, target)[0, 1])
    return float(grid[int(np.argmax(scores))])


def apply_prosody(feats: WorldFeatures, changes: np.ndarray) -> WorldFeatures:
    """Apply per-frame changes (T, 6): F0 st, gain dB, tilt dB/oct, added aperiodicity, log rate,
    log factor on the formant frequencies (voiced frames' envelope only)."""
    changes = np.asarray(changes, dtype=np.float64)
    T = feats.frames
    d_st, gain, tilt, breath, lograte, formant = changes.T
    # time warp: source frame i lasts 1/rate_i output frames
    dur = np.exp(-np.clip(lograte, -0.7, 0.7))
    ends = np.cumsum(dur)
    n_out = max(1, int(round(ends[-1])))
    # output frame j centre -> fractional source frame
    pos = np.interp(np.arange(n_out) + 0.5, np.concatenate([[0.0], ends]), np.arange(T + 1)) - 0.5
    pos = np.clip(pos, 0, T - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    w = (pos - i0)[:, None]
    near = np.rint(pos).astype(int)

    def lin(a):
        return a[i0] * (1 - w) + a[i1] * w if a.ndim == 2 else a[i0] * (1 - w[:, 0]) + a[i1] * w[:, 0]

    log_sp = lin(np.log(np.maximum(feats.sp, 1e-30)))
    ap = lin(feats.ap)
    f0_src = feats.f0[near]
    voiced = f0_src > 0
    f0 = np.where(voiced, f0_src * 2.0 ** (lin(d_st) / 12.0), 0.0)
    f0 = np.where(voiced, np.clip(f0, 50.0, 900.0), 0.0)
    warp = np.clip(lin(formant), -0.2, 0.2) * voiced
    if np.any(warp != 0):
        log_sp = warp_envelope(log_sp, warp)
    freqs = _freqs(feats.sp.shape[1])
    octaves = np.log2(np.maximum(freqs, 500.0) / 500.0)  # 0 below 500 Hz
    log_gain = np.log(10.0) / 10.0 * (lin(gain)[:, None] + lin(tilt)[:, None] * octaves[None])
    sp = np.exp(log_sp + log_gain)
    shape = np.sqrt(freqs / (SR / 2))[None]
    ap = np.clip(ap + np.clip(lin(breath), 0, 1)[:, None] * shape * voiced[:, None], 0.0, 1.0)
    return WorldFeatures(f0=f0, sp=sp, ap=ap, pos=pos, gain_db=lin(gain), tilt=lin(tilt))


def warp_mel(mel: np.ndarray, moved: WorldFeatures, mel_freqs: np.ndarray) -> np.ndarray:
    """The source log-mel (n_mels, T) moved like ``moved`` (time warp, gain, tilt, a frame's energy
    rising by the gain at most): the spectrum used for unvoiced frames, where a pitch change has
    nothing to act on and the original frames are kept rather than WORLD's re-synthesis of them."""
    T = mel.shape[1]
    pos = np.clip(moved.pos, 0, T - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    w = pos - i0
    out = mel[:, i0] * (1 - w) + mel[:, i1] * w
    octaves = np.log2(np.maximum(mel_freqs, 500.0) / 500.0)
    db = moved.gain_db[None] + moved.tilt[None] * octaves[:, None]  # (n_mels, T)
    # a brighter voice must not make a fricative louder than the level asked: the tilt reshapes an
    # unvoiced frame's spectrum but its energy rises by the gain at most (a fricative's energy
    # lies high, where the tilt acts most; uncapped, an angry "s" became the loudest frame)
    power = np.exp(2.0 * out)
    rise = 10 * np.log10((power * 10 ** (db / 10)).sum(0) / np.maximum(power.sum(0), 1e-30))
    db = db - np.maximum(rise - moved.gain_db, 0.0)[None]
    return out + db * np.log(10.0) / 20.0  # natural-log magnitude
