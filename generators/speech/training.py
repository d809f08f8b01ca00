"""Training the speech prosody denoiser (``affect train speech --config configs/train/speech.yaml``).

Two sources of (utterance, frame-level change, emotion embedding) examples:

- ``data.source: tts`` (the embedded default): neutral utterances from the offline synthetic
  corpus (``corpus.build_tts_corpus``); for each example a spec is drawn (one category or a mix of
  two, intensity 0-1.5, sometimes a curve from one spec to another within the utterance); its
  prosody-change vector comes from the literature direction model, varied +-20 % per dimension;
  the frame-level target is that vector realised on the utterance (``features.rule_changes``)
  plus slow random deviations (natural variation the condition does not explain). The model is
  conditioned on the *realised* vector, so that the embedding means what it does.
- ``data.source: esd | ravdess | cremad | folder``: parallel neutral/emotional pairs of the same
  speaker and sentence; targets measured by DTW alignment (``corpus.pair_targets``), and the
  direction model refitted on the measured vectors (``DirectionVectorModel.fit``).

Runs on accelerate; v-prediction with a cosine schedule; EMA; resumable checkpoints every
``checkpoint_every`` steps; the final pipeline (EMA weights, direction model) is saved and exported
to ``export.dir`` (the package's default is written this way).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from conditioning import DirectionVectorModel
from conditioning.vocabulary import CATEGORIES, NEUTRAL
from generators.speech.corpus import (
    Utterance,
    build_tts_corpus,
    pair_targets,
    parallel_pairs,
    scan_corpus,
)
from generators.speech.features import (
    CHANGE_SCALES,
    FRAME_MS,
    final_ramp,
    interp_unvoiced,
    rule_changes,
    seconds_to_last_voiced,
    to_end_channel,
)
from generators.speech.profiles import PROSODY, clip_raw, default_direction_model, from_z, to_z
from generators.training_utils import train_denoiser_pipeline

logger = logging.getLogger(__name__)

EMOTIONS = [c for c in CATEGORIES if c != NEUTRAL]


def _smooth_noise(rng: np.random.Generator, T: int, sigma: float, width: int = 25) -> np.ndarray:
    x = rng.normal(0, 1, T + 2 * width)
    k = np.hanning(2 * width + 1)
    y = np.convolve(x, k / np.sqrt((k**2).sum()), mode="same")[width : width + T]
    return sigma * y


class _Cropper:
    """Crops an example to ``crop`` frames and weighs its frames for the loss.

    ``end_share``: the share of crops of a longer utterance that end where it ends (the rest
    start anywhere). The phrase-final movement (``profiles``: the final contour over the last
    ``FINAL_SECONDS`` of voicing) lives in the utterance's last frames; uniform crops of 3 s from
    utterances of 3-4 s cut into it most of the time, so the model seldom saw it whole.
    ``final_weight``: frames of that final stretch weigh ``1 + final_weight * ramp`` in the loss
    (``features.final_ramp``, 0 -> 1 towards the last voiced frame); averaged over all frames, the
    last 0.35 s are a tenth of a crop and its movement was learnt weakly."""

    crop: int
    end_share: float = 0.0
    final_weight: float = 0.0
    rng: np.random.Generator

    def _crop(self, cond, target, voiced):
        weight = (1.0 + self.final_weight * final_ramp(voiced)).astype(np.float32)
        T, crop, rng = len(cond), self.crop, self.rng
        if T > crop:
            if self.end_share and rng.random() < self.end_share:
                s = T - crop
            else:
                s = rng.integers(0, T - crop + 1)
            return cond[s : s + crop], target[s : s + crop], weight[s : s + crop]
        pad = ((0, crop - T), (0, 0))
        return np.pad(cond, pad), np.pad(target, pad), np.pad(weight, pad[0])


def devoice_ending(pros: np.ndarray, rng: np.random.Generator, seconds: float = 0.5) -> np.ndarray:
    """A copy of prosody features (T, 4) whose ending is voiced as read speech's often is.

    The synthetic voices keep voicing to their last syllable (median voiced share of the final
    stretch 0.97); read speech often ends in a devoiced, breathy or creaky syllable (0.5-0.7 on the
    evaluation's recordings, one sentence 0.16; its last voiced run 16 frames against 25). Here
    the last voiced run is shortened (half the time, by up to 60 %) and one to three gaps of 2-8
    frames are cut into the last ``seconds`` of voicing; F0 is interpolated across the new gaps
    and the time to the last voiced frame recomputed, as ``prosody_features`` gives them."""
    out = pros.copy()
    voiced = out[:, 1] > 0
    idx = np.flatnonzero(voiced)
    if idx.size < 16:
        return out
    start = last = idx[-1]
    while start > 0 and voiced[start - 1]:
        start -= 1
    if rng.random() < 0.5:
        cut = rng.integers(0, int(0.6 * (last - start + 1)) + 1)
        voiced[last - cut + 1 : last + 1] = False
    to_end = seconds_to_last_voiced(voiced)
    near = np.flatnonzero(voiced & (to_end <= seconds))
    for _ in range(rng.integers(1, 4)):
        g = near[rng.integers(len(near))]
        voiced[g : g + rng.integers(2, 9)] = False
    if voiced.sum() < 8:
        return pros.copy()
    out[:, 0] = interp_unvoiced(out[:, 0], voiced)
    out[:, 1] = voiced
    out[:, 3] = to_end_channel(voiced)
    return out


def lower_ending(pros: np.ndarray, rng: np.random.Generator, fall_st: tuple = (2.0, 7.0)) -> np.ndarray:
    """A copy of prosody features (T, 4) whose F0 falls further over the final stretch.

    Read speech often ends lower than the synthetic voices do: two of the evaluation's LibriVox
    sentences end 6.7 and 8.4 st below their median (creak, a deep declarative fall); the
    synthetic voices' final stretch sits at -3.5 st (median; 5th percentile -5.1). The fall
    (``fall_st`` semitones at the last voiced frame) follows ``features.final_ramp``."""
    out = pros.copy()
    voiced = out[:, 1] > 0
    if voiced.sum() < 16:
        return out
    out[:, 0] -= rng.uniform(*fall_st) / 3.0 * final_ramp(voiced)  # the column is st / 3
    return out


def phrase_excerpt(content: np.ndarray, pros: np.ndarray, rng: np.random.Generator,
                   seconds: tuple = (0.6, 2.0)) -> tuple[np.ndarray, np.ndarray]:
    """The end of an utterance from a voicing onset, ``seconds`` long, as a short utterance.

    The synthetic sentences last 2-4 s, and a spoken name or a short phrase (the evaluation's
    card names: 1.1-2 s) is outside them. The excerpt's features are renormalised as the
    analysis normalises a whole utterance: content z-scored over the excerpt (the same as
    z-scoring the raw cepstrum, the normalisation being affine), F0 re the excerpt's voiced
    median, energy re its own median. The time to the last voiced frame is unchanged."""
    voiced = pros[:, 1] > 0
    T = len(pros)
    lo, hi = (int(s * 1000 / FRAME_MS) for s in seconds)
    onsets = np.flatnonzero(voiced[1:] & ~voiced[:-1]) + 1
    onsets = onsets[(T - onsets >= lo) & (T - onsets <= hi)]
    if onsets.size == 0:
        return content, pros
    s = onsets[rng.integers(len(onsets))]
    c, p = content[s:].copy(), pros[s:].copy()
    c = ((c - c.mean(0)) / (c.std(0) + 1e-5)).astype(np.float32)
    v = p[:, 1] > 0
    p[:, 0] -= np.median(p[v, 0])
    e = p[:, 2] * 10.0
    p[:, 2] = np.clip(e - np.median(e[e > e.max() - 40]), -40, 15) / 10.0
    return c, p


class SyntheticExamples(_Cropper):
    """Draws training examples from neutral utterances and the direction model.

    The synthetic voices end their sentences more evenly than people reading do, so a share of
    the examples is made to end as read speech often ends, and the final contour is learnt on
    such endings too: ``excerpt_share`` short utterances (``phrase_excerpt``), ``fall_share`` a
    lower final F0 (``lower_ending``), ``devoice_share`` a part-unvoiced ending
    (``devoice_ending``); each drawn independently."""

    def __init__(self, utts: list[Utterance], model: DirectionVectorModel, crop: int, seed: int,
                 end_share: float = 0.0, final_weight: float = 0.0, devoice_share: float = 0.0,
                 fall_share: float = 0.0, excerpt_share: float = 0.0):
        self.utts = [u for u in utts if len(u.prosody) >= 16]
        self.model = model
        self.crop, self.end_share, self.final_weight = crop, end_share, final_weight
        self.devoice_share, self.fall_share, self.excerpt_share = devoice_share, fall_share, excerpt_share
        self.rng = np.random.default_rng(seed)

    def _ending(self, content: np.ndarray, pros: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        if self.excerpt_share and rng.random() < self.excerpt_share:
            content, pros = phrase_excerpt(content, pros, rng)
        if self.fall_share and rng.random() < self.fall_share:
            pros = lower_ending(pros, rng)
        if self.devoice_share and rng.random() < self.devoice_share:
            pros = devoice_ending(pros, rng)
        return content, pros

    def _draw_contrib(self) -> np.ndarray:
        rng = self.rng
        c = np.zeros(len(CATEGORIES))
        if rng.random() < 0.12:
            return c
        k = rng.choice(len(EMOTIONS), size=2 if rng.random() < 0.3 else 1, replace=False)
        w = rng.dirichlet(np.ones(len(k))) if len(k) > 1 else np.ones(1)
        inten = rng.uniform(0, 1.5)
        for kk, ww in zip(k, w):
            c[CATEGORIES.index(EMOTIONS[kk])] = ww * inten
        return c

    def draw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cond (T, 34), target (T, 6) standardised, loss weight (T,), speaker (256,))."""
        rng = self.rng
        u = self.utts[rng.integers(len(self.utts))]
        content, pros = self._ending(u.content, u.prosody)
        T = len(pros)
        jitter = rng.uniform(0.8, 1.2, len(PROSODY))
        z_a = self.model.steer_contributions(self.model.neutral, self._draw_contrib()) * jitter
        if rng.random() < 0.2:  # a curve: one spec to another within the utterance
            z_b = self.model.steer_contributions(self.model.neutral, self._draw_contrib()) * jitter
            t0, t1 = sorted(rng.uniform(0, T, 2))
            a = np.clip((np.arange(T) - t0) / max(t1 - t0, 1.0), 0, 1)[:, None]
            z = (1 - a) * z_a + a * z_b
        else:
            z = np.repeat(z_a[None], T, axis=0)
        raw = from_z(z)
        if rng.random() < 0.25:  # formant moves beyond the profiles' (a smile's), so every value is seen
            raw[:, PROSODY.index("formant")] += rng.uniform(-0.05, 0.05)
        raw = clip_raw(raw)
        changes = rule_changes(pros, raw)
        voiced = pros[:, 1]
        changes[:, 0] += _smooth_noise(rng, T, 0.35) * voiced
        changes[:, 1] += _smooth_noise(rng, T, 0.8)
        emb = to_z(raw).astype(np.float32)
        cond = np.concatenate([content, pros, emb, np.ones((T, 1), np.float32)], axis=1)
        target = changes / CHANGE_SCALES
        return self._crop(cond, target, voiced > 0) + (u.speaker,)


class PairedExamples(_Cropper):
    """Training examples measured from parallel emotional recordings."""

    def __init__(self, items: list[tuple[Utterance, np.ndarray, np.ndarray]], crop: int, seed: int,
                 end_share: float = 0.0, final_weight: float = 0.0):
        self.items = items
        self.crop, self.end_share, self.final_weight = crop, end_share, final_weight
        self.rng = np.random.default_rng(seed)

    def draw(self):
        u, changes, raw = self.items[self.rng.integers(len(self.items))]
        T = len(u.prosody)
        emb = np.repeat(to_z(clip_raw(raw))[None].astype(np.float32), T, axis=0)
        cond = np.concatenate([u.content, u.prosody, emb, np.ones((T, 1), np.float32)], axis=1)
        return self._crop(cond, changes / CHANGE_SCALES, u.prosody[:, 1] > 0) + (u.speaker,)


def build_examples(data: dict, seed: int):
    """The example source and the direction model for a recipe's ``data`` section."""
    source = data.get("source", "tts")
    crop = {"crop": int(data["crop_frames"]), "end_share": float(data.get("crop_end_share", 0.0)),
            "final_weight": float(data.get("final_loss_weight", 0.0))}
    if source == "tts":
        utts = build_tts_corpus(data["cache"], int(data["sentences_per_voice"]),
                                data.get("voices"), int(data.get("seed", 0)))
        model = default_direction_model()
        logger.info("speech corpus: %d synthetic utterances", len(utts))
        endings = {f"{k}_share": float(data.get(f"{k}_share", 0.0)) for k in ("devoice", "fall", "excerpt")}
        return SyntheticExamples(utts, model, seed=seed, **endings, **crop), model, {
            "source": "tts", "utterances": len(utts), "voices": sorted({u.voice for u in utts})}
    files = scan_corpus(data["root"], source)
    pairs = parallel_pairs(files)
    if not pairs:
        raise ValueError(f"no neutral/emotional pairs of the same speaker and sentence in {data['root']!r}")
    items, raws, labels = [], [], []
    for neutral, emotional in pairs:
        utt, changes, raw = pair_targets(neutral.path, emotional.path)
        items.append((utt, changes, raw))
        raws.append(to_z(clip_raw(raw)))
        labels.append(emotional.emotion)
    raws += [np.zeros(len(PROSODY))] * max(1, len(raws) // 8)  # neutral: no change
    labels += ["neutral"] * (len(raws) - len(labels))
    model = DirectionVectorModel.fit(np.stack(raws), labels,
                                     meta={"medium": "speech", "fit": f"parallel pairs ({source})",
                                           "names": list(PROSODY)})
    return PairedExamples(items, seed=seed, **crop), model, {
        "source": source, "pairs": len(items)}


def train_speech(cfg: dict, *, max_steps: int | None = None, output_dir: str | None = None,
                 resume: bool = True) -> Path:
    """Run the recipe ``cfg``; returns the folder of the final pipeline."""
    from generators.speech.modeling_speech import ProsodyDenoiser
    from generators.speech.pipeline_speech import EmotionVoiceConversionPipeline, make_scheduler

    def collate(items, device):
        cond = torch.from_numpy(np.stack([i[0] for i in items])).transpose(1, 2).to(device)
        x0 = torch.from_numpy(np.stack([i[1] for i in items])).float().transpose(1, 2).to(device)
        weight = torch.from_numpy(np.stack([i[2] for i in items]))[:, None].to(device)
        spk = torch.from_numpy(np.stack([i[3] for i in items])).to(device)
        return x0, cond, spk, weight

    return train_denoiser_pipeline(cfg, build_examples, ProsodyDenoiser, EmotionVoiceConversionPipeline,
                                   make_scheduler, collate, lambda m, xt, t, c, spk: m(xt, t, c, spk),
                                   len(PROSODY) + 1, {"frame_ms": FRAME_MS}, max_steps=max_steps,
                                   output_dir=output_dir, resume=resume)
