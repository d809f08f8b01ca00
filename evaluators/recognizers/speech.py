"""Speech emotion recognizers: category probabilities and valence/arousal/dominance from a clip.

**speech-prosody-v1** (the embedded default, offline). 24 utterance-level acoustic functionals
in the spirit of the extended Geneva Minimalistic Acoustic Parameter Set (eGeMAPS; Eyben et al.
2016, IEEE Trans. Affective Computing 7(2)), computed here with the project's own code: F0 level,
spread, range, movement, final contour and jitter (WORLD DIO/StoneMask pitch); loudness level and
spread; alpha ratio, Hammarberg index and spectral slope (how much high-frequency energy);
harmonics-to-noise ratio; speaking-rate proxies (voiced segments per second, voiced share, pause
share). A small MLP (or an ensemble of them, averaged) maps the standardised functionals to the
nine categories and to VAD. It is trained by ``affect train speech-recognizer`` on any labelled
folder (``labels.csv`` with ``file,emotion``); the embedded weights were trained on a synthetic
corpus (README: what it learned from, and its limits). It never imports a generator.

**hub** backends: any ``transformers`` audio-classification checkpoint (for example a wav2vec2
model fine-tuned for emotion) through ``HubSpeechEmotionRecognizer``; its labels are mapped onto
the vocabulary by name, and its licence is read from the model card when there is one.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from conditioning import parse_emotion
from conditioning.audio import load_audio
from conditioning.spec import EmotionSpec
from conditioning.vocabulary import ANCHORS, CATEGORIES

logger = logging.getLogger(__name__)

SR = 16000
HOP = 160
DEFAULT_DIR = Path(__file__).parent / "default" / "speech-prosody-v1"
FEATURES = (
    "f0_mean_st", "f0_p10_st", "f0_p90_st", "f0_std_st", "f0_range_st", "f0_motion_st",
    "f0_final_st", "jitter", "loud_mean_db", "loud_std_db", "loud_range_db", "loud_peak_rate",
    "alpha_ratio", "hammarberg", "slope_500_4k", "centroid_log", "hnr_db", "flatness_hi",
    "voiced_segments_per_s", "voiced_share", "pause_share", "mean_voiced_s", "f0_rise_share",
    "loud_voiced_minus_all",
    # more of eGeMAPS (Eyben et al. 2016): F0 percentiles and slopes, loudness slopes, shimmer,
    # MFCC 1-4 and spectral flux, a syllable-rate estimate, unvoiced stretches, the final F0 slope
    "f0_p20_st", "f0_p50_st", "f0_p80_st", "f0_rise_slope", "f0_fall_slope", "f0_final_slope",
    "loud_p20_db", "loud_p80_db", "loud_rise_slope", "loud_fall_slope", "shimmer_db",
    "mfcc1_mean", "mfcc2_mean", "mfcc3_mean", "mfcc4_mean", "mfcc1_std", "mfcc2_std", "mfcc3_std",
    "mfcc4_std", "flux_mean", "flux_std", "syllable_rate", "mean_unvoiced_s", "hnr_std_db",
    "alpha_unvoiced",
    # where the formants lie (eGeMAPS has F1-F3): smiling raises them (Tartter 1980)
    "f1_log", "f2_log", "f3_log",
)
#: the 24 functionals of the first speech-prosody-v1 weights (a checkpoint lists its own)
FEATURES_V1 = FEATURES[:24]


def _frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    n = 1 + max(0, (len(x) - win) // hop)
    idx = np.arange(win)[None] + hop * np.arange(n)[:, None]
    return x[idx]


def _mel_dct(n_fft: int = 512, n_mels: int = 26, n_ceps: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A triangular mel filterbank (0-8 kHz at 16 kHz) and the DCT-II rows of MFCC 0..n_ceps-1."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    edges = hz(np.linspace(mel(0), mel(SR / 2), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, c, hi = edges[i : i + 3]
        fb[i] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    k = np.arange(n_ceps)[:, None]
    dct = np.cos(np.pi * k * (np.arange(n_mels)[None] + 0.5) / n_mels)
    return fb, dct


_FB, _DCT = _mel_dct()


def _slopes(y: np.ndarray, mask: np.ndarray, dt: float) -> tuple[float, float]:
    """Mean rising and mean falling slope (units per second) of ``y`` over runs where ``mask``."""
    d = np.diff(y) / dt
    both = mask[1:] & mask[:-1]
    d = d[both]
    rise = float(np.mean(d[d > 0])) if (d > 0).any() else 0.0
    fall = float(-np.mean(d[d < 0])) if (d < 0).any() else 0.0
    return rise, fall


def acoustic_features(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """The functionals of ``FEATURES`` for a mono clip at any rate."""
    import pyworld as pw

    from conditioning.audio import resample

    x = resample(np.asarray(wav, dtype=np.float32), sample_rate, SR).astype(np.float64)
    f0, t = pw.dio(x, SR, f0_floor=60, f0_ceil=700, frame_period=1000 * HOP / SR)
    f0 = pw.stonemask(x, f0, t, SR)
    frames = _frames(np.pad(x, (200, 200)), 400, HOP)[: len(f0)]
    n = min(len(frames), len(f0))
    frames, f0 = frames[:n], f0[:n]
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    active = db > db.max() - 35
    voiced = (f0 > 0) & active
    st = 12 * np.log2(np.maximum(f0, 1) / 55.0)
    sv = st[voiced] if voiced.sum() >= 3 else np.zeros(3)
    dst = np.diff(st)
    both = voiced[1:] & voiced[:-1]
    motion = float(np.mean(np.abs(dst[both]))) if both.any() else 0.0
    rise = float(np.mean(dst[both] > 0)) if both.any() else 0.5
    jitter = float(np.mean(np.abs(np.diff(f0))[both] / f0[1:][both])) if both.any() else 0.0
    vidx = np.flatnonzero(voiced)
    tail = vidx[vidx >= vidx[-1] - 30] if vidx.size else vidx
    final = float(np.mean(st[tail]) - np.median(sv)) if tail.size else 0.0
    # spectra of active frames
    win = np.hanning(400)
    spec = np.abs(np.fft.rfft(frames * win, 512, axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(512, 1 / SR)
    sel = voiced if voiced.sum() >= 3 else active
    s = spec[sel].mean(0)
    band = lambda lo, hi: s[(freqs >= lo) & (freqs < hi)]  # noqa: E731
    alpha = 10 * np.log10(band(1000, 5000).sum() / band(50, 1000).sum())
    hamm = 10 * np.log10(band(0, 2000).max() / band(2000, 5000).max())
    m = (freqs >= 500) & (freqs <= 4000)
    slope = np.polyfit(np.log2(freqs[m]), 10 * np.log10(s[m]), 1)[0]
    centroid = np.log((s * freqs).sum() / s.sum())
    hi = (freqs >= 2000) & (freqs <= 5000)
    sv_spec = spec[sel][:, hi]
    flat = float(np.mean(np.exp(np.mean(np.log(sv_spec), 1)) / np.mean(sv_spec, 1)))
    # harmonics-to-noise: normalised autocorrelation at the pitch period of voiced frames
    hnr = []
    for i in vidx[:: max(1, len(vidx) // 200)]:
        lag = int(round(SR / f0[i]))
        fr = frames[i] - frames[i].mean()
        if lag >= len(fr) - 10:
            continue
        r = np.dot(fr[:-lag], fr[lag:]) / (np.sqrt(np.dot(fr[:-lag], fr[:-lag]) * np.dot(fr[lag:], fr[lag:])) + 1e-12)
        r = np.clip(r, 1e-3, 0.999)
        hnr.append(10 * np.log10(r / (1 - r)))
    # segments
    edges = np.diff(np.concatenate([[0], voiced.astype(int), [0]]))
    seg_len = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)) * HOP / SR
    span = np.flatnonzero(active)
    speech_s = max((span[-1] - span[0] + 1) * HOP / SR, 0.1) if span.size else 0.1
    inside = active[span[0] : span[-1] + 1] if span.size else active
    adb = db[active]
    peaks = np.flatnonzero((adb[1:-1] > adb[:-2]) & (adb[1:-1] >= adb[2:]) & (adb[1:-1] > np.percentile(adb, 60)))
    dt = HOP / SR
    # F0 slopes (semitones per second) over voiced runs, smoothed over 3 frames; the final slope
    # over the last 0.3 s of voicing
    st_i = np.interp(np.arange(len(st)), vidx, st[vidx]) if vidx.size else np.zeros(len(st))
    st_s = np.convolve(np.pad(st_i, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    ok = voiced & np.concatenate([[True], np.abs(np.diff(st_i)) < 1.5])  # no octave jumps
    f0_rise, f0_fall = _slopes(st_s, ok, dt)
    last = vidx[vidx >= vidx[-1] - 30] if vidx.size else vidx
    final_slope = float(np.polyfit(last * dt, st[last], 1)[0]) if last.size >= 5 else 0.0
    final_slope = float(np.clip(final_slope, -60, 60))
    # loudness slopes (dB per second) of the 50 ms-smoothed level over active frames
    db_s = np.convolve(db, np.ones(5) / 5, mode="same")
    loud_rise, loud_fall = _slopes(db_s, active, dt)
    shimmer = float(np.mean(np.abs(np.diff(db))[both])) if both.any() else 0.0
    # MFCC 1-4 over voiced frames (per-clip level removed by dropping c0) and spectral flux
    logmel = np.log(spec @ _FB.T + 1e-10)
    ceps = logmel @ _DCT.T / len(_FB)
    cv = ceps[sel][:, 1:5]
    lspec = np.log(spec[:, freqs <= 5000])
    lspec = lspec - lspec.mean(1, keepdims=True)
    flux = np.sqrt(np.mean(np.diff(lspec, axis=0) ** 2, axis=1))
    fa = flux[active[1:] & active[:-1]]
    # syllable nuclei (after de Jong & Wempe 2009): voiced peaks of the smoothed level standing
    # >= 2 dB above the dips on both sides, at least 60 ms apart
    from scipy.signal import find_peaks

    floor = np.where(active, db_s, db_s[active].min() if active.any() else db_s.min())
    pk, _ = find_peaks(floor, prominence=2.0, distance=6)
    syl = int(voiced[pk].sum())
    uv = active & ~voiced
    uedges = np.diff(np.concatenate([[0], uv[span[0]:span[-1] + 1].astype(int) if span.size else [0], [0]]))
    useg = (np.flatnonzero(uedges == -1) - np.flatnonzero(uedges == 1)) * dt
    su = spec[uv].mean(0) if uv.sum() >= 3 else s
    bu = lambda lo, hi: su[(freqs >= lo) & (freqs < hi)]  # noqa: E731
    alpha_uv = 10 * np.log10(bu(1000, 5000).sum() / bu(50, 1000).sum())
    # F1-F3 medians over voiced frames (log Hz)
    from evaluators.metrics.speech import lpc_formants

    fm = lpc_formants(x, SR, np.where(voiced, f0, 0.0), HOP)
    formants = np.log(np.median(fm, 0)) if len(fm) else np.log([500.0, 1500.0, 2500.0])
    extra = [
        np.percentile(sv, 20), np.percentile(sv, 50), np.percentile(sv, 80), f0_rise, f0_fall,
        final_slope, np.percentile(adb, 20), np.percentile(adb, 80), loud_rise, loud_fall, shimmer,
        *cv.mean(0), *cv.std(0), float(fa.mean()) if fa.size else 0.0,
        float(fa.std()) if fa.size else 0.0, syl / speech_s,
        float(np.mean(useg)) if len(useg) else 0.0, float(np.std(hnr)) if hnr else 0.0, alpha_uv,
        *formants,
    ]
    return np.array([
        np.mean(sv), np.percentile(sv, 10), np.percentile(sv, 90), np.std(sv),
        np.percentile(sv, 90) - np.percentile(sv, 10), motion, final, jitter,
        np.mean(adb), np.std(adb), np.percentile(adb, 90) - np.percentile(adb, 10),
        len(peaks) / speech_s, alpha, hamm, slope, centroid,
        np.median(hnr) if hnr else 0.0, flat, len(seg_len) / speech_s,
        voiced.sum() / max(active.sum(), 1), 1 - inside.mean(), float(np.mean(seg_len)) if len(seg_len) else 0.0,
        rise, (np.mean(db[voiced]) - np.mean(adb)) if voiced.any() else 0.0, *extra,
    ], dtype=np.float64)


@dataclass
class SpeechReading:
    """A recognizer's reading of one clip."""

    probabilities: dict[str, float]  # the nine categories, sum 1
    category: str
    valence: float | None = None
    arousal: float | None = None
    dominance: float | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    recognizer: str = ""

    def as_spec(self) -> EmotionSpec:
        contributions = {k: p for k, p in self.probabilities.items() if p >= 0.01}
        return EmotionSpec.from_contributions(contributions, notes=(f"read by {self.recognizer}",))


class _MLP(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_cat: int, dropout: float = 0.1):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, hidden), nn.GELU())
        self.cat = nn.Linear(hidden, n_cat)
        self.vad = nn.Linear(hidden, 3)

    def forward(self, x):
        h = self.body(x)
        return self.cat(h), torch.tanh(self.vad(h)), h


class _Ensemble(nn.Module):
    """MLPs fitted alike from different initialisations. A reading averages their probabilities
    and VAD (returned as the log of the mean probability, so a softmax gives the mean back); the
    embedding is their hidden features side by side. Small MLPs fitted on a synthetic corpus read
    out-of-corpus voices differently from one initialisation to the next; the average is steadier
    (deep ensembles: Lakshminarayanan, Pritzel & Blundell 2017)."""

    def __init__(self, members: list[_MLP]):
        super().__init__()
        self.members = nn.ModuleList(members)

    @property
    def cat(self) -> nn.Linear:
        return self.members[0].cat

    def forward(self, x):
        outs = [m(x) for m in self.members]
        p = torch.stack([torch.softmax(o[0], -1) for o in outs]).mean(0)
        return (torch.log(p.clamp_min(1e-12)), torch.stack([o[1] for o in outs]).mean(0),
                torch.cat([o[2] for o in outs], -1))


def _network(n_in: int, hidden: int, members: int) -> nn.Module:
    """One MLP, or an ensemble of ``members`` (a checkpoint's config says ``ensemble``)."""
    if members <= 1:
        return _MLP(n_in, hidden, len(CATEGORIES))
    return _Ensemble([_MLP(n_in, hidden, len(CATEGORIES)) for _ in range(members)])


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(0)
    # a floor on the scale: a feature nearly constant in training must not explode at test time
    return mean, np.maximum(X.std(0), 1e-3 + 1e-2 * np.abs(mean))


#: what the speaker-normalised head sees: the clip's functionals minus the reference's ("delta",
#: the speaker-normalised functionals), or both the clip's and the difference ("clip+delta")
REFERENCE_INPUTS = ("delta", "clip+delta")


def _reference_inputs(f: np.ndarray, r: np.ndarray, inputs: str) -> np.ndarray:
    return f - r if inputs == "delta" else np.concatenate([f, f - r], axis=1)


@dataclass
class _Head:
    """One reading: an MLP over standardised inputs."""

    model: _MLP
    mean: np.ndarray
    scale: np.ndarray

    def __call__(self, x: np.ndarray):
        z = np.clip((np.atleast_2d(x) - self.mean) / self.scale, -6, 6)
        with torch.inference_mode():
            logits, vad, h = self.model.eval()(torch.from_numpy(z).float())
        return torch.softmax(logits, -1).numpy(), vad.numpy(), h.numpy()


class SpeechEmotionRecognizer:
    """speech-prosody-v1: acoustic functionals -> MLP (or an ensemble of MLPs) -> categories + VAD.

    Two readings share the weights folder. The **plain** reading sees one clip. The
    **speaker-normalised** reading (``reference=`` the same speaker's neutral speech) sees the
    clip's functionals together with their difference from the reference's, the speaker-level
    normalisation of speech emotion recognition (Busso, Lee & Narayanan 2011; Schuller et al.'s
    challenges normalise per speaker): a speaker's own pitch, level, rate and voice quality are
    taken out, and what is left is how this clip departs from that speaker's neutral voice.
    Weights without the second head (the first speech-prosody-v1) refuse ``reference=``.
    """

    name = "speech-prosody-v1"
    medium = "speech"
    licence = "Apache-2.0 (this project's weights)"
    source = "this project; trained by `affect train speech-recognizer`"

    def __init__(self, model: _MLP, mean: np.ndarray, scale: np.ndarray, meta: dict | None = None,
                 features: tuple[str, ...] | list[str] | None = None, reference_head: _Head | None = None,
                 reference_inputs: str = "delta"):
        self.model = model.eval()
        self.mean, self.scale = mean, scale
        self.meta = dict(meta or {})
        self.features = tuple(features or FEATURES)
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"these weights use functionals this code does not compute: {unknown}")
        self._idx = np.array([FEATURES.index(f) for f in self.features])
        self.reference_head = reference_head
        if reference_inputs not in REFERENCE_INPUTS:
            raise ValueError(f"reference_inputs must be one of {REFERENCE_INPUTS}, got {reference_inputs!r}")
        self.reference_inputs = reference_inputs

    @property
    def supports_reference(self) -> bool:
        return self.reference_head is not None

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> SpeechEmotionRecognizer:
        from safetensors.torch import load_file

        path = Path(path or DEFAULT_DIR)
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"no speech recognizer weights in {str(path)!r}")
        cfg = json.loads((path / "config.json").read_text())
        state = load_file(str(path / "model.safetensors"))
        feats = cfg.get("features", list(FEATURES_V1))
        members = int(cfg.get("ensemble", 1))
        model = _network(len(feats), int(cfg["hidden"]), members)
        model.load_state_dict({k: v.float() for k, v in state.items() if not k.startswith(("norm.", "ref."))})
        head, inputs = None, "delta"
        if "ref.norm.mean" in state:
            ref = cfg["reference"]
            inputs = ref.get("inputs", "delta")
            n_in = len(feats) * (2 if inputs == "clip+delta" else 1)
            m = _network(n_in, int(ref["hidden"]), members)
            m.load_state_dict({k[4:]: v.float() for k, v in state.items()
                               if k.startswith("ref.") and not k.startswith("ref.norm.")})
            head = _Head(m.eval(), state["ref.norm.mean"].double().numpy(), state["ref.norm.scale"].double().numpy())
        return cls(model, state["norm.mean"].double().numpy(), state["norm.scale"].double().numpy(), cfg,
                   feats, head, inputs)

    def save_pretrained(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        state["norm.mean"] = torch.from_numpy(self.mean).float()
        state["norm.scale"] = torch.from_numpy(self.scale).float()
        cfg = dict(self.meta)
        cfg.update({"name": self.name, "features": list(self.features), "categories": list(CATEGORIES),
                    "hidden": self.model.cat.in_features,
                    "ensemble": len(self.model.members) if isinstance(self.model, _Ensemble) else 1})
        if self.reference_head is not None:
            h = self.reference_head
            state.update({f"ref.{k}": v.detach().contiguous() for k, v in h.model.state_dict().items()})
            state["ref.norm.mean"] = torch.from_numpy(h.mean).float()
            state["ref.norm.scale"] = torch.from_numpy(h.scale).float()
            cfg["reference"] = dict(cfg.get("reference", {}), hidden=h.model.cat.in_features,
                                    inputs=self.reference_inputs)
        save_file(state, str(path / "model.safetensors"))
        (path / "config.json").write_text(json.dumps(cfg, indent=2))

    def _readings(self, probs, vad, emb, name) -> list[SpeechReading]:
        out = []
        for p, v, e in zip(probs, vad, emb):
            d = {k: float(x) for k, x in zip(CATEGORIES, p)}
            out.append(SpeechReading(d, max(d, key=d.get), float(v[0]), float(v[1]), float(v[2]), e, name))
        return out

    def read_features(self, feats: np.ndarray, reference: np.ndarray | None = None) -> list[SpeechReading]:
        """Readings of ``acoustic_features`` rows; with ``reference`` (the functionals of the same
        speaker's neutral speech, one row or one per clip) the speaker-normalised reading."""
        f = np.atleast_2d(feats)[:, self._idx]
        if reference is None:
            return self._readings(*_Head(self.model, self.mean, self.scale)(f), self.name)
        if self.reference_head is None:
            raise ValueError(f"these {self.name} weights have no speaker-normalised reading; "
                             "retrain them with `affect train speech-recognizer` on a paired corpus")
        r = np.broadcast_to(np.atleast_2d(reference)[:, self._idx], f.shape)
        return self._readings(*self.reference_head(_reference_inputs(f, r, self.reference_inputs)),
                              f"{self.name}+reference")

    def __call__(self, audio: np.ndarray | str | Path, sample_rate: int | None = None,
                 reference=None) -> SpeechReading:
        """Read one clip; ``reference`` (a file, or ``(audio, sample_rate)``, or a list of them,
        whose functionals are averaged) is neutral speech of the same speaker, for the
        speaker-normalised reading (best: the same recording session)."""
        a = load_audio(audio, sample_rate)
        ref = None if reference is None else reference_features(reference)
        return self.read_features(acoustic_features(a.wav, a.sample_rate), ref)[0]


def reference_features(reference) -> np.ndarray:
    """The mean functionals of a speaker's neutral speech: a file, ``(audio, sample_rate)``, or a
    list of them."""
    items = reference if isinstance(reference, list) else [reference]
    if not items:
        raise ValueError("an empty list of reference clips")
    feats = []
    for item in items:
        r = load_audio(*item) if isinstance(item, tuple) else load_audio(item)
        feats.append(acoustic_features(r.wav, r.sample_rate))
    return np.mean(feats, axis=0)


#: Fixed references (centre, scale) for the transparent estimator: rough centres of adult read
#: speech recorded at a moderate level, not fitted to any data of this project.
CUE_REFERENCE = {
    "loud_mean_db": (-24.0, 6.0),
    "alpha_ratio": (-14.0, 5.0),
    "hammarberg": (18.0, 6.0),
    "f0_std_st": (2.5, 1.2),
    "f0_motion_st": (0.35, 0.2),
    "voiced_segments_per_s": (3.0, 1.0),
    "f0_final_st": (0.0, 2.0),
    "jitter": (0.02, 0.015),
    "hnr_db": (8.0, 4.0),
}
#: Arousal cues: louder, more high-frequency energy (higher alpha ratio, lower Hammarberg index),
#: more F0 variation, faster articulation (Juslin & Laukka 2003; Eyben et al. 2016 report these
#: among the strongest arousal correlates of eGeMAPS).
CUE_AROUSAL = {"loud_mean_db": 0.35, "alpha_ratio": 0.25, "hammarberg": -0.15, "f0_std_st": 0.15,
               "voiced_segments_per_s": 0.15}
#: Valence cues are weak in the voice (Scherer 2003); used: F0 variability and rising finals
#: (happiness, surprise), regular periodic voicing (higher HNR, lower jitter) against irregular,
#: breathy voicing (fear, sadness).
CUE_VALENCE = {"f0_motion_st": 0.2, "f0_final_st": 0.2, "hnr_db": 0.2, "jitter": -0.2}


class SpeechCueRecognizer:
    """speech-cues-v1: a transparent estimator, no learned weights: the functionals of
    ``acoustic_features``, standardised by fixed references, weighted with literature signs into
    valence and arousal, then categories by distance in the valence-arousal plane. A second,
    independent judge beside speech-prosody-v1 (it shares the feature code, not the training)."""

    name = "speech-cues-v1"
    medium = "speech"
    source = "this project (evaluators/recognizers/speech.py): literature-signed cue weights"
    licence = "Apache-2.0 (this project); no learned weights"

    def read_features(self, feats: np.ndarray) -> SpeechReading:
        from evaluators.recognizers.base import va_probabilities

        f = dict(zip(FEATURES, np.asarray(feats, dtype=np.float64)))

        def score(weights: dict[str, float]) -> float:
            z = {k: np.clip((f[k] - m) / s, -3, 3) for k, (m, s) in CUE_REFERENCE.items()}
            return float(np.tanh(sum(w * z[k] for k, w in weights.items())))

        valence, arousal = score(CUE_VALENCE), score(CUE_AROUSAL)
        probs = va_probabilities(valence, arousal)
        return SpeechReading(probs, max(probs, key=probs.get), valence, arousal, None, None, self.name)

    def __call__(self, audio, sample_rate: int | None = None) -> SpeechReading:
        a = load_audio(audio, sample_rate)
        return self.read_features(acoustic_features(a.wav, a.sample_rate))


def read_labelled_folder(folder: str | Path) -> list[tuple[Path, EmotionSpec]]:
    """``labels.csv`` (columns ``file,emotion``) of a folder -> (path, spec) rows."""
    folder = Path(folder)
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(2, "No labels.csv (columns file,emotion) in", str(folder))
    rows = []
    with open(labels, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            if "file" not in row or "emotion" not in row:
                raise ValueError(f"{labels}: needs columns 'file' and 'emotion'")
            try:
                spec = parse_emotion(row["emotion"])
            except ValueError as exc:
                raise ValueError(f"{labels} line {i}: {exc}") from None
            rows.append((folder / row["file"], spec))
    return rows


def degrade(wav: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A random recording channel: level +-10 dB, a tilted and band-limited response
    (+-2 dB/octave above 500 Hz, low-pass at 3.5-8 kHz, as microphones, rooms and lossy codecs
    do), and background noise at 15-45 dB SNR. Keeps a recognizer from reading the channel."""
    x = np.asarray(wav, dtype=np.float64)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sample_rate)
    tilt = rng.uniform(-2, 2) * np.log2(np.maximum(f, 500) / 500)
    cutoff = rng.uniform(3500, 8000)
    lowpass = 1 / np.sqrt(1 + (f / cutoff) ** 8)
    x = np.fft.irfft(spec * 10 ** (tilt / 20) * lowpass, len(x))
    noise = rng.normal(size=len(x))
    if rng.random() < 0.5:  # pink-ish
        noise = np.fft.irfft(np.fft.rfft(noise) / np.sqrt(np.maximum(f, 20) / 20), len(x))
    snr = rng.uniform(15, 45)
    x = x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2)) * 10 ** (-snr / 20)
    x = x * 10 ** (rng.uniform(-10, 10) / 20)
    return (x / max(1.0, np.abs(x).max() / 0.99)).astype(np.float32)


def read_corpus(folder: str | Path) -> list[dict]:
    """``labels.csv`` rows with their optional columns: ``reference`` (a file of the same speaker's
    neutral speech), ``speaker``, ``group`` (a session: clips recorded alike), ``role`` (``clip``
    is a training example; ``reference`` is only a reference)."""
    folder = Path(folder)
    specs = read_labelled_folder(folder)
    with open(folder / "labels.csv", newline="", encoding="utf-8") as fh:
        raw = list(csv.DictReader(fh))
    out = []
    for (path, spec), row in zip(specs, raw):
        refs = [folder / r.strip() for r in (row.get("reference") or "").split(";") if r.strip()]
        out.append({"path": path, "spec": spec, "reference": refs or None,
                    "speaker": row.get("speaker") or "", "group": row.get("group") or row["file"],
                    "role": row.get("role") or "clip", "text": row.get("text") or ""})
    return out


def pool_references(rows: list[dict]) -> list[dict]:
    """Each clip's references -> every neutral reference of its group (session) that says other
    words than the clip: speaker-level statistics, as in speaker normalisation (Busso et al.
    2011), rather than one sentence's. Clips whose group has no such reference keep their own."""
    text = {str(r["path"]): r["text"] for r in rows}
    pool: dict[str, set] = {}
    for r in rows:
        for f in r["reference"] or []:
            pool.setdefault(r["group"], set()).add(f)
    out = []
    for r in rows:
        others = sorted(f for f in pool.get(r["group"], ()) if text.get(str(f), "") != r["text"] or not r["text"])
        others = [f for f in others if f != r["path"]]
        out.append(dict(r, reference=others or r["reference"]))
    return out


def _corpus_features(rows: list[dict], augment: int, seed: int, cache: Path | None) -> dict:
    """Functionals of every clip and reference, plain and in ``augment`` degraded copies; all the
    files of a group (a session) get the same channel in each copy."""
    key = None
    if cache is not None:
        import hashlib

        key = hashlib.sha1(json.dumps([list(FEATURES), augment, seed, _FEATURE_CODE,
                                       sorted(str(r["path"]) for r in rows)]).encode()).hexdigest()[:12]
        f = cache / f".features-{key}.npz"
        if f.is_file():
            z = np.load(f, allow_pickle=False)
            return {(str(p), int(k)): v for p, k, v in zip(z["paths"], z["copies"], z["values"])}
    files = {}
    for r in rows:
        files[str(r["path"])] = r["group"]
        for f in r["reference"] or []:
            files.setdefault(str(f), r["group"])
    groups = sorted(set(files.values()))
    chan = {g: int(s) for g, s in zip(groups, np.random.default_rng(seed + 1).integers(0, 2**31, len(groups)))}
    feats = {}
    for i, (path, group) in enumerate(sorted(files.items())):
        a = load_audio(path)
        for k in range(1 + augment):
            wav = a.wav if k == 0 else degrade(a.wav, a.sample_rate, np.random.default_rng([chan[group], k]))
            feats[(path, k)] = acoustic_features(wav, a.sample_rate)
        if i % 200 == 0:
            logger.info("speech recognizer: functionals of %d / %d files", i, len(files))
    if key is not None:
        np.savez(cache / f".features-{key}.npz", paths=np.array([p for p, _ in feats]),
                 copies=np.array([k for _, k in feats]), values=np.stack(list(feats.values())))
    return feats


#: bump when acoustic_features changes, so cached functionals are not reused
_FEATURE_CODE = 4


def _fit(X: np.ndarray, y: np.ndarray, vad: np.ndarray, hidden: int, epochs: int, seed: int,
         members: int = 1):
    """A class-weighted, regularised MLP fit (full batch); returns the head. With ``members`` > 1,
    that many MLPs from seeds ``seed``, ``seed + 1``, ... make an ensemble (``_Ensemble``)."""
    if members > 1:
        heads = [_fit(X, y, vad, hidden, epochs, seed + k) for k in range(members)]
        return _Head(_Ensemble([h.model for h in heads]).eval(), heads[0].mean, heads[0].scale)
    mean, scale = _standardise(X)
    torch.manual_seed(seed)
    model = _MLP(X.shape[1], hidden, len(CATEGORIES), dropout=0.2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt = torch.from_numpy(np.clip((X - mean) / scale, -6, 6)).float()
    yt, vt = torch.from_numpy(y), torch.from_numpy(vad).float()
    counts = np.bincount(y, minlength=len(CATEGORIES)).astype(float)
    weight = torch.from_numpy(np.where(counts > 0, len(y) / (len(CATEGORIES) * np.maximum(counts, 1)), 0)).float()
    for _ in range(epochs):
        model.train()
        logits, v, _ = model(xt + 0.1 * torch.randn_like(xt))
        loss = (nn.functional.cross_entropy(logits, yt, weight=weight, label_smoothing=0.05)
                + nn.functional.mse_loss(v, vt))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return _Head(model.eval(), mean, scale)


def _accuracy(head: _Head, X: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Accuracy and recall per category (their mean is the balanced accuracy)."""
    pred = head(X)[0].argmax(-1)
    per = {CATEGORIES[c]: round(float(np.mean(pred[y == c] == c)), 3) for c in np.unique(y)}
    return float(np.mean(pred == y)), per


def _balanced(per: dict) -> float:
    return round(float(np.mean(list(per.values()))), 4)


def train_recognizer(folder: str | Path, out_dir: str | Path, *, hidden: int = 64, epochs: int = 400,
                     seed: int = 0, augment: int = 0, meta: dict | None = None,
                     holdout_speakers: int = 0, reference_hidden: int | None = None,
                     pool: bool = False, reference_inputs: str = "delta",
                     exclude_features: tuple[str, ...] | list[str] = (),
                     ensemble: int = 1) -> SpeechEmotionRecognizer:
    """Fit speech-prosody-v1 on a labelled folder; writes safetensors + config to ``out_dir``.

    ``augment`` degraded copies of each clip (``degrade``; a clip and its reference share the
    channel) are added to the training clips. The reported held-out accuracy is measured on
    ``holdout_speakers`` whole speakers (``speaker`` column) never trained on, or else on a tenth
    of the groups (no copy of a held-out clip, nor any clip of its session, is trained on); the
    shipped weights are then refit on everything. When the rows name a ``reference``, the
    speaker-normalised reading is fitted too (inputs: the clip's functionals and their difference
    from the reference's, ``reference_inputs``; several references, ``;``-separated, are averaged;
    with ``pool`` every
    clip's references are all of its group's that say other words, ``pool_references``).
    ``exclude_features`` names functionals the heads do not read (the checkpoint lists the ones
    it does). ``ensemble``: MLPs per reading, fitted from different seeds and averaged."""
    unknown = [f for f in exclude_features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown functionals to exclude: {unknown}; known: {', '.join(FEATURES)}")
    used = [f for f in FEATURES if f not in set(exclude_features)]
    cols = np.array([FEATURES.index(f) for f in used])
    folder = Path(folder)
    rows = read_corpus(folder)
    if pool:
        rows = pool_references(rows)
    feats = _corpus_features(rows, augment, seed, folder)
    clips = [r for r in rows if r["role"] == "clip"]
    X, R, y, vad, speaker, group, has_ref = [], [], [], [], [], [], []
    for r in clips:
        label = CATEGORIES.index("neutral") if r["spec"].is_neutral else CATEGORIES.index(r["spec"].dominant)
        for k in range(1 + augment):
            X.append(feats[(str(r["path"]), k)])
            ref = r["reference"]
            R.append(np.mean([feats[(str(f), k)] for f in ref], axis=0) if ref else np.full(len(FEATURES), np.nan))
            has_ref.append(ref is not None)
            y.append(label)
            vad.append(r["spec"].vad)
            speaker.append(r["speaker"])
            group.append(r["group"])
    X, R, y, vad = np.stack(X)[:, cols], np.stack(R)[:, cols], np.array(y), np.array(vad)
    speaker, group, has_ref = np.array(speaker), np.array(group), np.array(has_ref)
    XR = _reference_inputs(X, R, reference_inputs)
    rng = np.random.default_rng(seed)
    speakers = sorted(set(speaker) - {""})
    if holdout_speakers and len(speakers) > holdout_speakers:
        held = rng.permutation(speakers)[:holdout_speakers]
        is_val = np.isin(speaker, held)
        split = f"speakers {', '.join(sorted(held))} held out"
    else:
        groups = sorted(set(group))
        held = rng.permutation(groups)[: max(1, len(groups) // 10)]
        is_val = np.isin(group, held)
        split = f"{len(held)} of {len(groups)} groups held out"
    val_plain = np.flatnonzero(is_val)
    val_ref = np.flatnonzero(is_val & has_ref)
    head = _fit(X[~is_val], y[~is_val], vad[~is_val], hidden, epochs, seed, ensemble)
    acc, per = _accuracy(head, X[val_plain], y[val_plain])
    info = dict(meta or {})
    info.update({"clips": len(clips), "examples": len(X), "augment": augment,
                 "validation": split, "validation_accuracy": round(acc, 4),
                 "validation_balanced_accuracy": _balanced(per),
                 "validation_accuracy_per_category": per, "epochs": epochs})
    ref_head = None
    if has_ref.any():
        rh = reference_hidden or hidden
        tr = ~is_val & has_ref
        ref_head = _fit(XR[tr], y[tr], vad[tr], rh, epochs, seed, ensemble)
        racc, rper = _accuracy(ref_head, XR[val_ref], y[val_ref])
        info["reference"] = {"hidden": rh, "validation_accuracy": round(racc, 4),
                             "validation_balanced_accuracy": _balanced(rper), "pooled_references": pool,
                             "validation_accuracy_per_category": rper, "examples": int(has_ref.sum())}
        logger.info("speech recognizer: speaker-normalised held-out accuracy %.3f (%s)", racc, split)
    logger.info("speech recognizer: %d examples, held-out accuracy %.3f (%s)", len(X), acc, split)
    if holdout_speakers:  # the shipped weights see every speaker
        head = _fit(X, y, vad, hidden, epochs, seed, ensemble)
        if ref_head is not None:
            ref_head = _fit(XR[has_ref], y[has_ref], vad[has_ref], ref_head.model.cat.in_features, epochs, seed,
                            ensemble)
    rec = SpeechEmotionRecognizer(head.model, head.mean, head.scale, info, used, ref_head, reference_inputs)
    rec.save_pretrained(out_dir)
    return rec


# -- hub backends --------------------------------------------------------------------------------
_LABEL_ALIASES = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad", "fea": "fearful",
                  "dis": "disgusted", "sur": "surprised", "cal": "calm", "con": "contempt",
                  "exc": "happy", "fru": "angry", "fear": "fearful", "disgust": "disgusted",
                  "surprise": "surprised", "joy": "happy", "anger": "angry", "sadness": "sad",
                  "ps": "surprised"}


def map_label(label: str) -> str | None:
    """A hub model's label -> a vocabulary category (None when it has no counterpart)."""
    key = label.strip().lower()
    if key in CATEGORIES:
        return key
    if key in _LABEL_ALIASES:
        return _LABEL_ALIASES[key]
    try:
        spec = parse_emotion(key)
    except ValueError:
        return None
    return "neutral" if spec.is_neutral else spec.dominant


class HubSpeechEmotionRecognizer:
    """Any transformers audio-classification checkpoint (a hub id the user has, or a local folder)."""

    def __init__(self, model_id: str, device: str = "cpu"):
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        self.extractor = AutoFeatureExtractor.from_pretrained(model_id)
        self.model = AutoModelForAudioClassification.from_pretrained(model_id).to(device).eval()
        self.device = device
        self.name = f"hub:{model_id}"
        self.medium = "speech"
        self.source = model_id
        self.licence = _card_licence(model_id)
        labels = self.model.config.id2label
        self.mapping = {int(i): map_label(str(n)) for i, n in labels.items()}
        if not any(self.mapping.values()):
            raise ValueError(f"{model_id}: none of its labels ({list(labels.values())}) name an emotion")

    def __call__(self, audio, sample_rate: int | None = None) -> SpeechReading:
        sr = int(getattr(self.extractor, "sampling_rate", 16000))
        a = load_audio(audio, sample_rate, target_sr=sr)
        inputs = self.extractor(a.wav, sampling_rate=sr, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            logits = self.model(**inputs).logits[0].float().cpu()
        p = torch.softmax(logits, -1).numpy()
        probs = dict.fromkeys(CATEGORIES, 0.0)
        for i, cat in self.mapping.items():
            if cat is not None:
                probs[cat] += float(p[i])
        total = sum(probs.values()) or 1.0
        probs = {k: v / total for k, v in probs.items()}
        vad = np.sum([[probs[k] * x for x in (ANCHORS[k].valence, ANCHORS[k].arousal, ANCHORS[k].dominance)]
                      for k in CATEGORIES], axis=0)
        return SpeechReading(probs, max(probs, key=probs.get), float(vad[0]), float(vad[1]),
                             float(vad[2]), None, self.name)


def _card_licence(model_id: str) -> str:
    readme = Path(model_id) / "README.md"
    if readme.is_file():
        text = readme.read_text("utf-8", errors="replace")
        for line in text.splitlines()[:40]:
            if line.lower().startswith("license:"):
                return line.split(":", 1)[1].strip()
    try:
        from huggingface_hub import model_info

        return str(model_info(model_id).card_data.get("license", "see the model card"))
    except Exception:
        return "see the model card"
