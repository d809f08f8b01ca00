"""Training the face motion denoiser (``affect train face --config configs/train/face.yaml``).

Two sources of (speech, rig-motion target, emotion embedding) examples:

- ``data.source: tts`` (the embedded default). No talking-face data with emotion labels can be had
  on the build machines, so the default learns the *mapping from speech to mouth motion* from
  phonetic alignments, and the expression from the emotion prototypes:
  1. sentences spoken by the offline voices (flite, espeak-ng; ``generators.tts``), a share of
     them (``data.convert_fraction``) converted to an emotion by the ``convert`` function the
     caller passes in (``affect train face`` passes the project's own voice-conversion pipeline;
     this module never imports another medium) so that the model also hears emotional prosody;
  2. pocketsphinx forced alignment of the known words -> phones -> mouth shapes with
     coarticulation (``articulation.mouth_targets``), F0 rises -> brow accents;
  3. for each example an emotion spec is drawn (a category or a mix of two, intensity 0-1.3,
     sometimes a curve within the clip), steered by the face direction model into action-unit
     intensities (varied +-15 % per AU), and combined with the mouth shapes
     (``articulation.combine``; livelier articulation at high arousal).
  Two or three utterances are joined with pauses of 0.2-1 s, so the model learns to rest the
  mouth in silence; the audio gets noise at 15-50 dB SNR.
- ``data.source: mead`` or ``folder``: video folders with emotion labels (the MEAD layout
  ``<speaker>/video/front/<emotion>/level_<n>/<clip>.mp4`` or ``folder + labels.csv`` with
  ``file,emotion,intensity``). Landmarks are tracked with the face mesh on every frame and fitted
  to the rig's parameters by least squares (``fit_rig_params``); the direction model is refitted
  on the clips' mean action units.

Runs on accelerate with the shared loop (``generators.training_utils``); the final pipeline is
saved and exported to ``export.dir`` (the package's default is written this way).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from conditioning import DirectionVectorModel
from conditioning.audio import load_audio
from conditioning.vocabulary import CATEGORIES, NEUTRAL
from generators.face.articulation import (
    FPS,
    SR,
    align_phones,
    audio_features,
    brow_accents,
    combine,
    mouth_targets,
    vocal_effort,
)
from generators.face.rig import EMOTION_AUS, MOTION, default_direction_model
from generators.training_utils import train_denoiser_pipeline

logger = logging.getLogger(__name__)

EMOTIONS = [c for c in CATEGORIES if c != NEUTRAL]
SAMPLES_PER_FRAME = SR // FPS  # 882

#: ``convert(wav, sample_rate, emotion, generator) -> wav``: speech converted to an emotion (a spec
#: string such as ``"angry@0.70"``), float32 mono at the same rate; e.g. the speech pipeline's
#: ``lambda w, sr, e, g: pipe(w, sr, emotion=e, generator=g).audio``.
Convert = Callable[[np.ndarray, int, str, torch.Generator], np.ndarray]


@dataclass
class Clip:
    """One aligned utterance: audio padded to whole video frames, mouth shapes, brow accents."""

    wav: np.ndarray  # (n_frames * 882,) float32 at 22,050 Hz
    mouth: np.ndarray  # (n_frames, 5)
    brows: np.ndarray  # (n_frames,)
    text: str
    voice: str


def clip_from_audio(wav: np.ndarray, text: str, voice: str = "") -> Clip | None:
    """Align ``text`` in 22,050 Hz speech and derive the motion targets (None if alignment fails)."""
    from conditioning.audio import resample

    n = int(np.ceil(len(wav) / SAMPLES_PER_FRAME))
    wav = np.pad(wav, (0, n * SAMPLES_PER_FRAME - len(wav))).astype(np.float32)
    phones = align_phones(resample(wav, SR, 16000), text)
    if not any(p[0] not in ("SIL", "+NSN+", "+SPN+") for p in phones):
        return None
    effort = vocal_effort(audio_features(wav, n))
    return Clip(wav, mouth_targets(phones, n, effort).astype(np.float32),
                brow_accents(wav, n).astype(np.float32), text, voice)


def build_face_corpus(cache: str | Path, n_sentences: int, voices: list[str] | None = None,
                      seed: int = 0, convert_fraction: float = 0.0,
                      convert: Convert | None = None) -> list[Clip]:
    """``n_sentences`` per voice, aligned (cached as an npz keyed by the recipe); a share
    ``convert_fraction`` of them converted to an emotion by ``convert`` (needed when that share is
    above 0 and the corpus is not cached yet)."""
    from generators.tts import default_voices, sentences, synthesize_tts

    voices = voices or default_voices()
    key = hashlib.sha1(f"{n_sentences}|{seed}|{','.join(voices)}|{convert_fraction}|face3".encode()).hexdigest()[:10]
    cache = Path(cache).expanduser()
    path = cache / f"face-corpus-{key}.npz"
    if path.exists():
        return _load_clips(path)
    if convert_fraction > 0 and convert is None:
        raise ValueError(
            f"data.convert_fraction is {convert_fraction:g}: converting the face corpus's speech to "
            "emotions needs a convert function (train_face(cfg, convert=...); `affect train face` "
            "passes the speech pipeline's); or set data.convert_fraction: 0")
    texts = sentences(n_sentences * len(voices), seed + 101)
    rng = np.random.default_rng(seed)
    clips: list[Clip] = []
    with tempfile.TemporaryDirectory() as tmp:
        for v, voice in enumerate(voices):
            for i in range(n_sentences):
                text = texts[v * n_sentences + i]
                f = Path(tmp) / "u.wav"
                synthesize_tts(text, voice, f)
                wav = load_audio(f, target_sr=SR).wav
                if rng.random() < convert_fraction:
                    emo = f"{rng.choice(['angry', 'happy', 'sad', 'fearful', 'surprised', 'calm'])}" \
                          f"@{rng.uniform(0.4, 1.0):.2f}"
                    wav = convert(wav, SR, emo, torch.Generator().manual_seed(i))
                    voice_tag = f"{voice}>{emo}"
                else:
                    voice_tag = voice
                c = clip_from_audio(wav, text, voice_tag)
                if c is not None:
                    clips.append(c)
            logger.info("face corpus: %s done (%d clips)", voice, len(clips))
    cache.mkdir(parents=True, exist_ok=True)
    _save_clips(path, clips)
    return clips


def _save_clips(path: Path, clips: list[Clip]) -> None:
    from conditioning.io import atomic_write

    with atomic_write(path, "wb") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh, frames=np.array([len(c.mouth) for c in clips]),
            wav=np.concatenate([c.wav for c in clips]).astype(np.float16),
            mouth=np.concatenate([c.mouth for c in clips]), brows=np.concatenate([c.brows for c in clips]),
            text=np.array([c.text for c in clips]), voice=np.array([c.voice for c in clips]))


def _load_clips(path: Path) -> list[Clip]:
    with np.load(path) as z:  # every array read once (``z[name]`` decompresses it again each time)
        a = {k: z[k] for k in ("frames", "wav", "mouth", "brows", "text", "voice")}
    ends = np.cumsum(a["frames"])
    starts = ends - a["frames"]
    wav = a["wav"].astype(np.float32)
    return [Clip(wav[s * SAMPLES_PER_FRAME : e * SAMPLES_PER_FRAME], a["mouth"][s:e], a["brows"][s:e],
                 str(a["text"][i]), str(a["voice"][i])) for i, (s, e) in enumerate(zip(starts, ends))]


def _smooth_noise(rng: np.random.Generator, T: int, sigma: float, width: int = 12) -> np.ndarray:
    x = rng.normal(0, 1, T + 2 * width)
    k = np.hanning(2 * width + 1)
    return sigma * np.convolve(x, k / np.sqrt((k**2).sum()), mode="same")[width : width + T]


class MotionExamples:
    """Draws (condition, target) examples from aligned clips and the direction model."""

    def __init__(self, clips: list[Clip], model: DirectionVectorModel, crop: int, seed: int):
        from generators.audio_features import MelSpectrogram

        self.clips = clips
        self.model = model
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        self.mel = MelSpectrogram()

    def _contrib(self) -> np.ndarray:
        rng = self.rng
        c = np.zeros(len(CATEGORIES))
        if rng.random() < 0.12:
            return c
        k = rng.choice(len(EMOTIONS), size=2 if rng.random() < 0.25 else 1, replace=False)
        w = rng.dirichlet(np.ones(len(k))) if len(k) > 1 else np.ones(1)
        inten = rng.uniform(0, 1.3)
        for kk, ww in zip(k, w):
            c[CATEGORIES.index(EMOTIONS[kk])] = ww * inten
        return c

    def _arousal(self, c: np.ndarray) -> float:
        from conditioning.vocabulary import ANCHORS

        return float(sum(c[i] * ANCHORS[k].arousal for i, k in enumerate(CATEGORIES)))

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """(cond (crop, 97), target (crop, 18) standardised)."""
        from generators.face.pipeline_face import PARAM_CENTRE, PARAM_SCALE

        rng = self.rng
        parts_wav, parts_mouth, parts_brow = [], [], []
        for _ in range(int(rng.integers(1, 4))):
            c = self.clips[rng.integers(len(self.clips))]
            gap = int(rng.uniform(0.2, 1.0) * FPS)
            parts_wav += [c.wav, np.zeros(gap * SAMPLES_PER_FRAME, np.float32)]
            parts_mouth += [c.mouth, np.zeros((gap, c.mouth.shape[1]), np.float32)]
            parts_brow += [c.brows, np.zeros(gap, np.float32)]
        lead = int(rng.uniform(0, 0.6) * FPS)
        wav = np.concatenate([np.zeros(lead * SAMPLES_PER_FRAME, np.float32)] + parts_wav)
        mouth = np.concatenate([np.zeros((lead, 5), np.float32)] + parts_mouth)
        brows = np.concatenate([np.zeros(lead, np.float32)] + parts_brow)
        T = len(mouth)
        if T > self.crop:  # crop on whole frames, before features: alignment is kept
            s = int(rng.integers(0, T - self.crop + 1))
            wav = wav[s * SAMPLES_PER_FRAME : (s + self.crop) * SAMPLES_PER_FRAME]
            mouth, brows, T = mouth[s : s + self.crop], brows[s : s + self.crop], self.crop
        level = rng.uniform(0.1, 0.9) / max(1e-4, float(np.abs(wav).max()))
        wav = wav * level
        snr = rng.uniform(15, 50)
        rms = np.sqrt(np.mean(wav**2)) + 1e-9
        wav = wav + rng.normal(0, rms * 10 ** (-snr / 20), len(wav)).astype(np.float32)
        feats = audio_features(wav, T, self.mel)
        ca = self._contrib()
        jitter = rng.uniform(0.85, 1.15, len(EMOTION_AUS))
        za = self.model.steer_contributions(self.model.neutral, ca) * jitter
        if rng.random() < 0.2:  # a curve within the clip
            cb = self._contrib()
            zb = self.model.steer_contributions(self.model.neutral, cb) * jitter
            t0, t1 = sorted(rng.uniform(0, T, 2))
            a = np.clip((np.arange(T) - t0) / max(t1 - t0, 1.0), 0, 1)[:, None]
            emb = (1 - a) * za + a * zb
            arousal = 0.5 * (self._arousal(ca) + self._arousal(cb))
        else:
            emb = np.repeat(za[None], T, axis=0)
            arousal = self._arousal(ca)
        emb = np.clip(emb, 0, 1.2)
        aus = emb + np.stack([_smooth_noise(rng, T, 0.03) for _ in EMOTION_AUS], 1)
        target = combine(np.clip(aus, 0, 1.2), mouth, brows, articulation_gain=1.0 + 0.25 * np.clip(arousal, -1, 1))
        cond = np.concatenate([feats, emb, np.ones((T, 1))], 1).astype(np.float32)
        x = ((target - PARAM_CENTRE) / PARAM_SCALE).astype(np.float32)
        if T < self.crop:
            cond = np.pad(cond, ((0, self.crop - T), (0, 0)))
            x = np.pad(x, ((0, self.crop - T), (0, 0)))
        return cond, x


def build_examples(data: dict, seed: int, convert: Convert | None = None):
    source = data.get("source", "tts")
    if source in ("mead", "folder"):
        return build_video_examples(data, seed)
    if source != "tts":
        raise ValueError(f"unknown face data source {source!r}; accepted: tts, mead, folder")
    clips = build_face_corpus(data["cache"], int(data["sentences_per_voice"]), data.get("voices"),
                              int(data.get("seed", 0)), float(data.get("convert_fraction", 0.0)), convert)
    model = default_direction_model()
    return MotionExamples(clips, model, int(data["crop_frames"]), seed), model, {
        "source": "tts", "clips": len(clips), "voices": sorted({c.voice.split(">")[0] for c in clips}),
        "converted": sum(">" in c.voice for c in clips)}


def train_face(cfg: dict, *, max_steps: int | None = None, output_dir: str | None = None,
               resume: bool = True, convert: Convert | None = None) -> Path:
    """Run the recipe ``cfg``; returns the folder of the final pipeline. ``convert`` turns speech
    emotional for the TTS corpus (see ``Convert``; needed when ``data.convert_fraction`` > 0)."""
    from generators.face.modeling_face import MotionDenoiser
    from generators.face.pipeline_face import TalkingHeadPipeline, make_scheduler

    def collate(items, device):
        cond = torch.from_numpy(np.stack([i[0] for i in items])).transpose(1, 2).to(device)
        x0 = torch.from_numpy(np.stack([i[1] for i in items])).transpose(1, 2).to(device)
        return x0, cond, None

    def examples(data, seed):
        return build_examples(data, seed, convert)

    return train_denoiser_pipeline(cfg, examples, MotionDenoiser, TalkingHeadPipeline, make_scheduler,
                                   collate, lambda m, xt, t, c, _: m(xt, t, c), len(EMOTION_AUS) + 1,
                                   {"fps": FPS, "motion": list(MOTION)}, max_steps=max_steps,
                                   output_dir=output_dir, resume=resume)


# -- video corpora (MEAD-style) ------------------------------------------------------------------
MEAD_EMOTIONS = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                 "fear": "fearful", "surprised": "surprised", "disgusted": "disgusted",
                 "contempt": "contempt"}


@dataclass
class LabelledVideo:
    path: Path
    emotion: str
    intensity: float
    speaker: str


def scan_videos(root: str | Path, layout: str) -> list[LabelledVideo]:
    """Labelled talking-face videos: MEAD (``<speaker>/video/front/<emotion>/level_<n>/*.mp4``,
    levels 1-3 -> intensity 1/3, 2/3, 1) or ``folder`` (``labels.csv``: file,emotion,intensity)."""
    root = Path(root)
    out: list[LabelledVideo] = []
    if layout == "mead":
        for f in sorted(root.glob("*/video/front/*/level_*/*.mp4")):
            emo = MEAD_EMOTIONS.get(f.parts[-3].lower())
            if emo is None:
                continue
            level = int(f.parts[-2].split("_")[1])
            out.append(LabelledVideo(f, emo, min(1.0, level / 3), f.parts[-6]))
    elif layout == "folder":
        with open(root / "labels.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                out.append(LabelledVideo(root / row["file"], row["emotion"], float(row.get("intensity") or 1.0),
                                         row.get("speaker", "")))
    else:
        raise ValueError(f"unknown video layout {layout!r}; accepted: mead, folder")
    return out


#: Landmarks that expressions barely move: eye corners, nose bridge and tip, forehead, cheekbones.
STABLE = (33, 133, 362, 263, 168, 6, 197, 1, 10, 234, 454)


def align_to(rest: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Remove head motion: each (478, 2) frame mapped onto ``rest`` by the similarity transform
    (Umeyama least squares) of the ``STABLE`` landmarks. frames (N, 478, 2) -> (N, 478, 2)."""
    idx = list(STABLE)
    b = rest[idx]
    mb = b.mean(0)
    out = np.empty_like(frames)
    for i, f in enumerate(frames):
        a = f[idx]
        ma = a.mean(0)
        u, sv, vt = np.linalg.svd((b - mb).T @ (a - ma))
        d = np.sign(np.linalg.det(u @ vt))
        r = u @ np.diag([1.0, d]) @ vt
        scale = (sv * [1.0, d]).sum() / ((a - ma) ** 2).sum()
        out[i] = (f - ma) @ r.T * scale + mb
    return out


def fit_rig_params(rest: np.ndarray, frames: np.ndarray, rig) -> np.ndarray:
    """Rig parameters (N, 18) that best explain tracked landmarks, by least squares.

    ``rest`` (478, 2) is the clip's neutral frame (``rig`` was fitted to it), ``frames``
    (N, 478, 2) the tracked landmarks with the head's motion removed (``align_to``). Solves
    min ||B p - d||^2 for p, B the rig's basis in pixels (956, 18), clipped to [0, 1.2].
    """
    zero = rig.displace({})  # the rig's own rest (zero for a rig made with neutralize=False)
    basis = np.stack([(rig.displace({au: 1.0}) - zero).ravel() for au in MOTION], 1)  # (956, 18)
    d = (frames - rest[None]).reshape(len(frames), -1)  # (N, 956)
    p, *_ = np.linalg.lstsq(basis, d.T, rcond=None)
    return np.clip(p.T, 0.0, 1.2)


def video_targets(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(wav at 22,050 Hz padded to whole frames, rig parameters (n_frames, 18) at 25 fps) of one
    talking-face video: the mesh tracked on every frame, the first frame taken as the clip's rest
    pose (MEAD clips start from rest), head motion removed, parameters fitted, resampled to 25 fps."""
    from conditioning.audio import resample
    from generators.face.portrait import Portrait, _face_mesh
    from generators.face.rig import Rig
    from generators.face.video import probe_video, read_video_audio, read_video_frames

    info = probe_video(path)
    tracker = _face_mesh(static=False, faces=1)
    pts, first = [], None
    for frame in read_video_frames(path):
        res = tracker.process(np.ascontiguousarray(frame))
        h, w = frame.shape[:2]
        if res.multi_face_landmarks:
            lm = np.array([[p.x * w, p.y * h] for p in res.multi_face_landmarks[0].landmark])
            first = frame if first is None else first
        else:
            lm = np.full((478, 2), np.nan)
        pts.append(lm)
    pts = np.array(pts)  # (M, 478, 2)
    ok = ~np.isnan(pts).any(axis=(1, 2))
    if ok.sum() < 0.8 * len(pts) or first is None:
        logger.warning("%s: a face was tracked on only %d of %d frames; skipped", path, ok.sum(), len(pts))
        return None
    rest = pts[np.argmax(ok)]
    # the clip's first frame is its rest pose as it is (a smile there is the clip's own)
    rig = Rig(Portrait(first, rest, np.zeros(len(rest)), int(np.ptp(rest[:, 1]))), neutralize=False)
    aligned = align_to(rest, pts[ok])
    params = fit_rig_params(rest, aligned, rig)  # (M_ok, 18)
    t_src = np.nonzero(ok)[0] / info.fps
    audio, sr = read_video_audio(path)
    wav = resample(audio, sr, SR).astype(np.float32)
    n = int(round(len(wav) / SR * FPS))
    t = np.arange(n) / FPS
    p25 = np.stack([np.interp(t, t_src, params[:, j]) for j in range(params.shape[1])], 1)
    wav = np.pad(wav, (0, max(0, n * SAMPLES_PER_FRAME - len(wav))))[: n * SAMPLES_PER_FRAME]
    return wav, p25.astype(np.float32)


class VideoExamples:
    """Training examples from labelled talking-face videos: real audio, fitted motion, the label's
    embedding in the (refitted) direction model."""

    def __init__(self, items: list[tuple[np.ndarray, np.ndarray, np.ndarray]], crop: int, seed: int):
        from generators.audio_features import MelSpectrogram

        self.items = items  # (wav, params (T, 18), emotion AUs (16,))
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        self.mel = MelSpectrogram()

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        from generators.face.pipeline_face import PARAM_CENTRE, PARAM_SCALE

        wav, params, emb = self.items[self.rng.integers(len(self.items))]
        T = len(params)
        if T > self.crop:
            s = int(self.rng.integers(0, T - self.crop + 1))
            wav = wav[s * SAMPLES_PER_FRAME : (s + self.crop) * SAMPLES_PER_FRAME]
            params, T = params[s : s + self.crop], self.crop
        feats = audio_features(wav, T, self.mel)
        cond = np.concatenate([feats, np.repeat(emb[None], T, 0), np.ones((T, 1))], 1).astype(np.float32)
        x = ((params - PARAM_CENTRE) / PARAM_SCALE).astype(np.float32)
        if T < self.crop:
            cond = np.pad(cond, ((0, self.crop - T), (0, 0)))
            x = np.pad(x, ((0, self.crop - T), (0, 0)))
        return cond, x


def build_video_examples(data: dict, seed: int):
    """Examples and a refitted direction model from a MEAD-style or labelled video folder."""
    from conditioning import parse_emotion

    videos = scan_videos(data["root"], data["source"])
    if not videos:
        raise ValueError(f"no labelled videos found in {data['root']!r} (layout {data['source']!r})")
    fitted, aus, labels = [], [], []
    for v in videos:
        got = video_targets(v.path)
        if got is None:
            continue
        wav, params = got
        fitted.append((wav, params, v))
        aus.append(params[:, : len(EMOTION_AUS)].mean(0))
        labels.append(parse_emotion(v.emotion).dominant if v.emotion != "neutral" else "neutral")
    if not fitted:
        raise ValueError(f"no face could be tracked in the videos of {data['root']!r}")
    model = DirectionVectorModel.fit(np.stack(aus), labels, meta={
        "medium": "face", "fit": f"labelled videos ({data['source']})", "names": list(EMOTION_AUS)})
    items = []
    for (wav, params, v), lab in zip(fitted, labels):
        spec = parse_emotion(f"{lab}@{v.intensity:g}") if lab != "neutral" else parse_emotion("neutral")
        emb = np.clip(np.asarray(model.steer(model.neutral, spec), dtype=np.float32), 0, 1.2)
        items.append((wav, params, emb))
    return VideoExamples(items, int(data["crop_frames"]), seed), model, {
        "source": data["source"], "videos": len(items), "skipped": len(videos) - len(items)}
