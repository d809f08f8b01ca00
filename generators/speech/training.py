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
from generators.speech.features import CHANGE_SCALES, FRAME_MS, final_ramp, rule_changes
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


class SyntheticExamples(_Cropper):
    """Draws training examples from neutral utterances and the direction model."""

    def __init__(self, utts: list[Utterance], model: DirectionVectorModel, crop: int, seed: int,
                 end_share: float = 0.0, final_weight: float = 0.0):
        self.utts = [u for u in utts if len(u.prosody) >= 16]
        self.model = model
        self.crop, self.end_share, self.final_weight = crop, end_share, final_weight
        self.rng = np.random.default_rng(seed)

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
        T = len(u.prosody)
        jitter = rng.uniform(0.8, 1.2, len(PROSODY))
        z_a = self.model.steer_contributions(None, self._draw_contrib()) * jitter
        if rng.random() < 0.2:  # a curve: one spec to another within the utterance
            z_b = self.model.steer_contributions(None, self._draw_contrib()) * jitter
            t0, t1 = sorted(rng.uniform(0, T, 2))
            a = np.clip((np.arange(T) - t0) / max(t1 - t0, 1.0), 0, 1)[:, None]
            z = (1 - a) * z_a + a * z_b
        else:
            z = np.repeat(z_a[None], T, axis=0)
        raw = from_z(z)
        if rng.random() < 0.25:  # formant moves beyond the profiles' (a smile's), so every value is seen
            raw[:, PROSODY.index("formant")] += rng.uniform(-0.05, 0.05)
        raw = clip_raw(raw)
        changes = rule_changes(u.prosody, raw)
        voiced = u.prosody[:, 1]
        changes[:, 0] += _smooth_noise(rng, T, 0.35) * voiced
        changes[:, 1] += _smooth_noise(rng, T, 0.8)
        emb = to_z(raw).astype(np.float32)
        cond = np.concatenate([u.content, u.prosody, emb, np.ones((T, 1), np.float32)], axis=1)
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
        return SyntheticExamples(utts, model, seed=seed, **crop), model, {
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
