"""Speech emotion recognizers: category probabilities and valence/arousal/dominance from a clip.

**speech-prosody-v1** (the embedded default, offline). 24 utterance-level acoustic functionals
in the spirit of the extended Geneva Minimalistic Acoustic Parameter Set (eGeMAPS; Eyben et al.
2016, IEEE Trans. Affective Computing 7(2)), computed here with the project's own code: F0 level,
spread, range, movement, final contour and jitter (WORLD DIO/StoneMask pitch); loudness level and
spread; alpha ratio, Hammarberg index and spectral slope (how much high-frequency energy);
harmonics-to-noise ratio; speaking-rate proxies (voiced segments per second, voiced share, pause
share). A small MLP maps the standardised functionals to the nine categories and to VAD. It is
trained by ``affect train speech-recognizer`` on any labelled folder (``labels.csv`` with
``file,emotion``); the embedded weights were trained on a synthetic corpus (README: what it
learned from, and its limits). It never imports a generator.

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
)


def _frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    n = 1 + max(0, (len(x) - win) // hop)
    idx = np.arange(win)[None] + hop * np.arange(n)[:, None]
    return x[idx]


def acoustic_features(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """The 24 functionals of ``FEATURES`` for a mono clip at any rate."""
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
    return np.array([
        np.mean(sv), np.percentile(sv, 10), np.percentile(sv, 90), np.std(sv),
        np.percentile(sv, 90) - np.percentile(sv, 10), motion, final, jitter,
        np.mean(adb), np.std(adb), np.percentile(adb, 90) - np.percentile(adb, 10),
        len(peaks) / speech_s, alpha, hamm, slope, centroid,
        np.median(hnr) if hnr else 0.0, flat, len(seg_len) / speech_s,
        voiced.sum() / max(active.sum(), 1), 1 - inside.mean(), float(np.mean(seg_len)) if len(seg_len) else 0.0,
        rise, (np.mean(db[voiced]) - np.mean(adb)) if voiced.any() else 0.0,
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
    def __init__(self, n_in: int, hidden: int, n_cat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(0.1),
                                  nn.Linear(hidden, hidden), nn.GELU())
        self.cat = nn.Linear(hidden, n_cat)
        self.vad = nn.Linear(hidden, 3)

    def forward(self, x):
        h = self.body(x)
        return self.cat(h), torch.tanh(self.vad(h)), h


class SpeechEmotionRecognizer:
    """speech-prosody-v1: acoustic functionals -> MLP -> categories + VAD."""

    name = "speech-prosody-v1"
    medium = "speech"
    licence = "Apache-2.0 (this project's weights)"
    source = "this project; trained by `affect train speech-recognizer`"

    def __init__(self, model: _MLP, mean: np.ndarray, scale: np.ndarray, meta: dict | None = None):
        self.model = model.eval()
        self.mean, self.scale = mean, scale
        self.meta = dict(meta or {})

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> SpeechEmotionRecognizer:
        from safetensors.torch import load_file

        path = Path(path or DEFAULT_DIR)
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"no speech recognizer weights in {str(path)!r}")
        cfg = json.loads((path / "config.json").read_text())
        state = load_file(str(path / "model.safetensors"))
        model = _MLP(len(FEATURES), int(cfg["hidden"]), len(CATEGORIES))
        model.load_state_dict({k: v.float() for k, v in state.items() if not k.startswith("norm.")})
        return cls(model, state["norm.mean"].double().numpy(), state["norm.scale"].double().numpy(), cfg)

    def save_pretrained(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        state["norm.mean"] = torch.from_numpy(self.mean).float()
        state["norm.scale"] = torch.from_numpy(self.scale).float()
        save_file(state, str(path / "model.safetensors"))
        cfg = dict(self.meta)
        cfg.update({"name": self.name, "features": list(FEATURES), "categories": list(CATEGORIES),
                    "hidden": self.model.cat.in_features})
        (path / "config.json").write_text(json.dumps(cfg, indent=2))

    def read_features(self, feats: np.ndarray) -> list[SpeechReading]:
        z = (np.atleast_2d(feats) - self.mean) / self.scale
        with torch.inference_mode():
            logits, vad, h = self.model(torch.from_numpy(np.clip(z, -6, 6)).float())
        probs = torch.softmax(logits, -1).numpy()
        out = []
        for p, v, e in zip(probs, vad.numpy(), h.numpy()):
            d = {k: float(x) for k, x in zip(CATEGORIES, p)}
            out.append(SpeechReading(d, max(d, key=d.get), float(v[0]), float(v[1]), float(v[2]),
                                     e, self.name))
        return out

    def __call__(self, audio: np.ndarray | str | Path, sample_rate: int | None = None) -> SpeechReading:
        a = load_audio(audio, sample_rate)
        return self.read_features(acoustic_features(a.wav, a.sample_rate))[0]


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


def train_recognizer(folder: str | Path, out_dir: str | Path, *, hidden: int = 64, epochs: int = 400,
                     seed: int = 0, augment: int = 0, meta: dict | None = None) -> SpeechEmotionRecognizer:
    """Fit speech-prosody-v1 on a labelled folder; writes safetensors + config to ``out_dir``.

    ``augment`` degraded copies of each clip (``degrade``) are added to the training clips; the
    held-out tenth is split by clip, so no copy of a held-out clip is trained on."""
    rows = read_labelled_folder(folder)
    rng_aug = np.random.default_rng(seed + 1)
    X, y, vad, group = [], [], [], []
    for g, (path, spec) in enumerate(rows):
        a = load_audio(path)
        label = CATEGORIES.index(spec.dominant) if not spec.is_neutral else CATEGORIES.index("neutral")
        for k in range(1 + augment):
            wav = a.wav if k == 0 else degrade(a.wav, a.sample_rate, rng_aug)
            X.append(acoustic_features(wav, a.sample_rate))
            y.append(label)
            vad.append(spec.vad)
            group.append(g)
    X, y, vad, group = np.stack(X), np.array(y), np.array(vad), np.array(group)
    mean = X.mean(0)
    # a floor on the scale: a feature nearly constant in training must not explode at test time
    scale = np.maximum(X.std(0), 1e-3 + 1e-2 * np.abs(mean))
    torch.manual_seed(seed)
    model = _MLP(X.shape[1], hidden, len(CATEGORIES))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    xt = torch.from_numpy(np.clip((X - mean) / scale, -6, 6)).float()
    yt, vt = torch.from_numpy(y), torch.from_numpy(vad).float()
    rng = np.random.default_rng(seed)
    held = rng.permutation(len(rows))[: max(1, len(rows) // 10)]
    is_val = np.isin(group, held)
    val, tr = np.flatnonzero(is_val), np.flatnonzero(~is_val)
    for _ in range(epochs):
        model.train()
        logits, v, _ = model(xt[tr] + 0.05 * torch.randn_like(xt[tr]))
        loss = nn.functional.cross_entropy(logits, yt[tr]) + nn.functional.mse_loss(v, vt[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.inference_mode():
        acc = float((model(xt[val])[0].argmax(-1) == yt[val]).float().mean())
    info = dict(meta or {})
    info.update({"clips": len(rows), "examples": len(X), "augment": augment,
                 "validation_accuracy": round(acc, 4), "epochs": epochs})
    rec = SpeechEmotionRecognizer(model, mean, scale, info)
    rec.save_pretrained(out_dir)
    logger.info("speech recognizer: %d clips, held-out accuracy %.3f", len(X), acc)
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
