"""``affect train vocoder``: distil HiFi-GAN V1 into the CPU-fast ``FastVocoder``.

Data (``build_vocoder_data``, cached): the mels the voice converter actually feeds its vocoder.
For every utterance (synthetic flite/espeak-ng sentences, and the real recordings of Debian's
pocketsphinx-testdata that the evaluation does not use):

- copy synthesis: the mel of the recording itself, in 256-frame blocks; the teacher's waveform is
  the target, and the recording's own samples a second target for the mel loss;
- conversions: the converter run at random emotions and intensities with the teacher as its
  vocoder; every block it vocodes (the moved WORLD mel, unvoiced frames from the source, with the
  converter's context frames) is recorded with the teacher's output;
- channel copies (``augment_copies`` per utterance, copy synthesis only): the utterance through a
  random recording channel (``channel``: a band limit, a room, a noise floor, a level), so that
  the student hears the mels of real rooms and microphones that synthetic voices never have; the
  teacher's waveform of the changed mel is the target (and the changed recording, for a real one).

Training: random crops of ``crop_frames`` frames, each at a random level when the recipe asks
(``gain_augment_db``: the mel shifted by the gain's log, the targets scaled by the gain; the
teacher follows its input's level, and so must the student); losses against the teacher's waveform:
multi-resolution STFT (spectral convergence + log magnitude), log-mel L1, and a phase-aware L1 on
the power-compressed complex STFT (the teacher's waveform is a deterministic function of the mel,
so its phase can be regressed, which a vocoder trained from recordings cannot do); plus the
log-mel L1 against the real recording where there is one. No discriminator (see the README for
what was measured). AdamW, warm-up + cosine, EMA, resumable checkpoints (``generators.training_utils``).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from generators.speech.features import SR
from generators.speech.pipeline_speech import vocoder_scale

logger = logging.getLogger(__name__)

BLOCK = 256  # frames per copy-synthesis block (as the converter's VOCODER_BLOCK)


def channel(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``wav`` (22,050 Hz) through a random recording channel: a low-pass at 3.4-11 kHz (telephone
    to full band), a synthetic room (exponentially decaying noise, RT60 0.15-0.7 s, 10-50 % wet),
    a noise floor 20-45 dB below the speech (white or pink) and a level change of -12 to +6 dB;
    each applied with probability 1/2 (the level always)."""
    from scipy.signal import butter, fftconvolve, sosfilt

    y = wav.astype(np.float64)
    if rng.random() < 0.5:
        cut = float(rng.uniform(3400.0, 11000.0))
        y = sosfilt(butter(8, min(cut, 0.99 * SR / 2), fs=SR, output="sos"), y)
    if rng.random() < 0.5:
        rt60 = float(rng.uniform(0.15, 0.7))
        t = np.arange(int(rt60 * SR)) / SR
        rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
        rir[0] = 0.0
        rir /= np.linalg.norm(rir) + 1e-9
        room = fftconvolve(y, rir)[: len(y)]
        wet = float(rng.uniform(0.1, 0.5))
        y = (1 - wet) * y + wet * room * np.std(y) / (np.std(room) + 1e-9)
    if rng.random() < 0.5:
        noise = rng.standard_normal(len(y))
        if rng.random() < 0.5:  # pink: 1/f power
            spec = np.fft.rfft(noise)
            spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1.0))
            noise = np.fft.irfft(spec, len(y))
        snr = float(rng.uniform(20.0, 45.0))
        y = y + noise * np.std(y) / (np.std(noise) + 1e-9) * 10 ** (-snr / 20)
    y = y * 10 ** (float(rng.uniform(-12.0, 6.0)) / 20)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def _copy_blocks(teacher, mel_fn, wav: np.ndarray, real: bool, kind: str, *lists: list) -> None:
    """Copy synthesis of ``wav`` in ``BLOCK``-frame blocks, appended to (mels, wavs, reals, kinds):
    the mel, the teacher's waveform and, for a real recording, its own samples."""
    mels, wavs, reals, kinds = lists
    scale = vocoder_scale(wav)
    x = (wav / scale).astype(np.float32)
    mel = mel_fn(torch.from_numpy(x))
    for s in range(0, mel.shape[1], BLOCK):
        m = mel[:, s : s + BLOCK]
        if m.shape[1] < 16:
            continue
        mels.append(m.numpy().astype(np.float32))
        wavs.append(teacher(m[None])[0].numpy().astype(np.float32))
        seg = x[s * 256 : (s + m.shape[1]) * 256]
        reals.append(np.pad(seg, (0, m.shape[1] * 256 - len(seg))) if real else None)
        kinds.append(kind)


def _save_blocks(path: Path, data: dict, utterances: int, mels, wavs, reals, kinds) -> None:
    """Write rendered blocks to ``path`` atomically (a ``.tmp`` file renamed into place)."""
    seconds = sum(len(w) for w in wavs) / SR
    tmp = path.with_suffix(".tmp")
    torch.save({"mels": mels, "wavs": wavs, "reals": reals, "kinds": kinds, "data": data,
                "seconds": seconds, "utterances": utterances}, tmp)
    tmp.replace(path)
    logger.info("%.0f s of teacher audio in %d blocks -> %s", seconds, len(mels), path)


class _Recorder(torch.nn.Module):
    """Stands in for the converter's vocoder: runs the teacher and keeps every (mel, wav) block."""

    def __init__(self, teacher):
        super().__init__()
        self.teacher, self.hop, self.blocks = teacher, teacher.hop, []

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        y = self.teacher(mel)
        self.blocks.append((mel[0].cpu().numpy().astype(np.float32), y[0].cpu().numpy().astype(np.float32)))
        return y


def _utterances(data: dict) -> list[tuple[str, np.ndarray, bool]]:
    """(name, wav at 22,050 Hz, is_real) for the recipe's synthetic sentences and real recordings."""
    from generators.speech.corpus import read_real
    from generators.tts import default_voices, sentences, synthesize_tts

    voices = data.get("voices") or default_voices()
    n = int(data.get("sentences_per_voice", 10))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for vi, voice in enumerate(voices):
            for si, text in enumerate(sentences(n, seed=int(data.get("seed", 0)) + 1000 + vi)):
                path = Path(tmp) / f"{vi}_{si}.wav"
                synthesize_tts(text, voice, path)
                out.append((f"{voice}/{si}", read_real(path), False))
    for f in data.get("real", []):
        if Path(f).is_file():
            out.append((Path(f).name, read_real(f), True))
        else:
            logger.warning("real recording %s not found; skipped", f)
    return out


def build_vocoder_data(data: dict, cache: Path) -> Path:
    """Render (once) the teacher's blocks for the recipe's ``data`` section into ``cache``;
    returns the ``.pt`` file. A recipe change renders again (the file name carries its hash)."""
    import hashlib

    from conditioning.vocabulary import CATEGORIES
    from generators.audio_features import MelSpectrogram
    from generators.speech.pipeline_speech import EmotionVoiceConversionPipeline
    from generators.speech.vocoder import load_hifigan

    base = {k: v for k, v in data.items() if k != "augment_copies"}  # the channel copies have their own file
    key = hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache).expanduser() / f"vocoder-data-{key}.pt"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(data.get("seed", 0)))
    teacher = load_hifigan(data.get("teacher", "universal"))
    mel_fn = MelSpectrogram()
    rec = _Recorder(teacher)
    pipe = EmotionVoiceConversionPipeline.from_pretrained()
    pipe._vocoder, pipe._mel = rec, mel_fn
    emotions = [c for c in CATEGORIES if c != "neutral"]
    mels, wavs, reals, kinds = [], [], [], []
    t0 = time.time()
    utts = _utterances(data)
    for i, (name, wav, real) in enumerate(utts):
        with torch.inference_mode():
            _copy_blocks(teacher, mel_fn, wav, real, "copy-real" if real else "copy-tts", mels, wavs, reals, kinds)
        n_conv = int(data.get("conversions_per_real" if real else "conversions_per_utterance", 2))
        for _ in range(n_conv):
            emo = str(rng.choice(emotions))
            inten = float(rng.uniform(0.3, 1.0))
            rec.blocks = []
            try:
                pipe(wav, SR, emotion=emo, intensity=inten, generator=torch.Generator().manual_seed(int(rng.integers(1 << 30))))
            except ValueError as exc:  # an utterance without voicing, say
                logger.warning("%s: conversion skipped (%s)", name, exc)
                continue
            for m, y in rec.blocks:
                mels.append(m)
                wavs.append(y)
                reals.append(None)
                kinds.append("conversion")
        logger.info("vocoder data: %d/%d utterances, %d blocks (%.0f s)", i + 1, len(utts), len(mels),
                    time.time() - t0)
    _save_blocks(path, data, len(utts), mels, wavs, reals, kinds)
    return path


def build_channel_data(data: dict, cache: Path) -> Path | None:
    """Render (once) the channel copies of the recipe's utterances (``augment_copies`` each, through
    ``channel``) with the teacher into ``cache``; ``None`` when the recipe asks for none. Kept apart
    from ``build_vocoder_data``'s file so that adding them does not render the rest again."""
    import hashlib

    from generators.audio_features import MelSpectrogram
    from generators.speech.vocoder import load_hifigan

    copies = int(data.get("augment_copies", 0))
    if copies <= 0:
        return None
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache).expanduser() / f"vocoder-channel-{key}.pt"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(data.get("seed", 0)) + 7919)
    teacher, mel_fn = load_hifigan(data.get("teacher", "universal")), MelSpectrogram()
    mels, wavs, reals, kinds = [], [], [], []
    t0 = time.time()
    utts = _utterances(data)
    for i, (_, wav, real) in enumerate(utts):
        for _ in range(copies):
            with torch.inference_mode():
                _copy_blocks(teacher, mel_fn, channel(wav, rng), real, "channel-real" if real else "channel-tts",
                             mels, wavs, reals, kinds)
        logger.info("channel data: %d/%d utterances, %d blocks (%.0f s)", i + 1, len(utts), len(mels),
                    time.time() - t0)
    _save_blocks(path, data, len(utts), mels, wavs, reals, kinds)
    return path


class _Crops:
    """Random crops of ``frames`` mel frames with their teacher (and real) samples."""

    def __init__(self, blob: dict, frames: int, seed: int, gain_db: tuple[float, float] | None = None):
        keep = [i for i, m in enumerate(blob["mels"]) if m.shape[1] >= frames]
        self.mels = [torch.from_numpy(blob["mels"][i]) for i in keep]
        self.wavs = [torch.from_numpy(blob["wavs"][i]) for i in keep]
        self.reals = [None if blob["reals"][i] is None else torch.from_numpy(blob["reals"][i]) for i in keep]
        self.frames, self.rng, self.gain_db = frames, np.random.default_rng(seed), gain_db
        lengths = np.array([m.shape[1] - frames + 1 for m in self.mels], dtype=np.float64)
        self.p = lengths / lengths.sum()  # every frame about equally likely

    def draw(self, batch: int):
        idx = self.rng.choice(len(self.mels), size=batch, p=self.p)
        mel, wav, real, has_real = [], [], [], []
        for i in idx:
            s = int(self.rng.integers(0, self.mels[i].shape[1] - self.frames + 1))
            mel.append(self.mels[i][:, s : s + self.frames])
            wav.append(self.wavs[i][s * 256 : (s + self.frames) * 256])
            r = self.reals[i]
            real.append(r[s * 256 : (s + self.frames) * 256] if r is not None else torch.zeros(self.frames * 256))
            has_real.append(r is not None)
        mel, wav, real = torch.stack(mel), torch.stack(wav), torch.stack(real)
        if self.gain_db is not None:
            mel, wav, real = level_shift(mel, wav, real, self.rng.uniform(*self.gain_db, size=batch))
        return mel, wav, real, torch.tensor(has_real, dtype=torch.float32)


def level_shift(mel: torch.Tensor, wav: torch.Tensor, real: torch.Tensor, gain_db: np.ndarray):
    """The crops played ``gain_db`` (one per crop) louder: the waveforms times the gain, the log mel
    plus its natural log, clamped at the front end's floor. A vocoder should follow its input's
    level (HiFi-GAN V1's copy error is the same from -18 to 0 dB); trained at the data's own levels
    only, the student does not (louder input came out quieter, quieter input louder)."""
    from generators.audio_features import MelConfig

    g = torch.from_numpy(10 ** (np.asarray(gain_db, np.float64) / 20)).float()
    floor = math.log(MelConfig.log_floor)
    return ((mel + torch.log(g)[:, None, None]).clamp_min(floor), wav * g[:, None], real * g[:, None])


def _stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    return torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, device=x.device), return_complex=True)


RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


def vocoder_losses(y: torch.Tensor, target: torch.Tensor, mel_fn) -> dict[str, torch.Tensor]:
    """The distillation losses of ``y`` against ``target`` (both (B, samples))."""
    out = {"stft": 0.0}
    for n_fft, hop in RESOLUTIONS:
        a, b = _stft(y, n_fft, hop).abs(), _stft(target, n_fft, hop).abs()
        sc = torch.linalg.norm(b - a, dim=(1, 2)) / torch.linalg.norm(b, dim=(1, 2)).clamp_min(1e-5)
        out["stft"] = out["stft"] + sc.mean() + F.l1_loss(torch.log(a.clamp_min(1e-5)), torch.log(b.clamp_min(1e-5)))
    out["stft"] = out["stft"] / len(RESOLUTIONS)
    out["mel"] = F.l1_loss(mel_fn(y), mel_fn(target))
    a, b = _stft(y, 1024, 256), _stft(target, 1024, 256)
    ca = a * (a.abs().clamp_min(1e-8) ** -0.7)  # |X|^0.3 e^(i phase): compressed, phase kept
    cb = b * (b.abs().clamp_min(1e-8) ** -0.7)
    out["phase"] = (ca - cb).abs().mean()
    return out


def widened_state(old: dict, new: dict) -> dict:
    """``old``'s weights for a model whose state is ``new``: equal shapes are copied; a weight with
    more input channels in ``new`` (the embedding of a model with ``level_path``) keeps the old
    channels and starts the added ones at zero."""
    out = {}
    for k, v in new.items():
        w = old[k]
        if w.shape != v.shape:
            if w.dim() != v.dim() or w.shape[0] != v.shape[0] or w.shape[2:] != v.shape[2:] or w.shape[1] > v.shape[1]:
                raise ValueError(f"cannot start {k} of shape {tuple(v.shape)} from one of shape {tuple(w.shape)}")
            w = torch.cat([w, w.new_zeros(w.shape[0], v.shape[1] - w.shape[1], *w.shape[2:])], dim=1)
        out[k] = w
    return out


def train_vocoder(cfg: dict, *, max_steps: int | None = None, output_dir: str | None = None,
                  resume: bool = True) -> Path:
    """Run the recipe ``cfg`` (``configs/train/vocoder.yaml``, then ``vocoder_stage2.yaml`` and
    ``vocoder_stage3.yaml``, each starting from the one before); returns the final model's folder."""
    import shutil

    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from generators.audio_features import MelSpectrogram
    from generators.speech.modeling_vocoder import FastVocoder
    from generators.training_utils import export_target, prepare_training, save_checkpoint

    data, mcfg, tcfg, ecfg = cfg["data"], cfg["model"], cfg["training"], cfg.get("export", {})
    seed = int(tcfg.get("seed", 0))
    set_seed(seed)
    blob_path = build_vocoder_data(data, Path(data.get("cache", "~/.cache/affectstudio")))
    blob = torch.load(blob_path, weights_only=False)
    extra_path = build_channel_data(data, Path(data.get("cache", "~/.cache/affectstudio")))
    if extra_path is not None:
        extra = torch.load(extra_path, weights_only=False)
        for k in ("mels", "wavs", "reals", "kinds"):
            blob[k] = blob[k] + extra[k]
        blob["seconds"] += extra["seconds"]
    gain = tcfg.get("gain_augment_db")
    crops = _Crops(blob, int(data.get("crop_frames", 64)), seed, tuple(map(float, gain)) if gain else None)
    accelerator = Accelerator(cpu=tcfg.get("cpu", False))
    out = Path(output_dir or tcfg["output_dir"]).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    max_steps = int(max_steps or tcfg["max_steps"])
    model = FastVocoder(**mcfg)
    if tcfg.get("init_from"):  # a second stage starts from the first stage's weights
        first_stage = FastVocoder.from_pretrained(str(Path(tcfg["init_from"]).expanduser()))
        model.load_state_dict(widened_state(first_stage.float().state_dict(), model.state_dict()))
        logger.info("initialised from %s", tcfg["init_from"])
    state = prepare_training(accelerator, model, tcfg, max_steps, out, resume)
    if state.step:
        crops.rng = np.random.default_rng(seed + state.step)
    mel_fn = MelSpectrogram().to(accelerator.device)
    w = tcfg.get("loss_weights", {"stft": 1.0, "mel": 1.0, "phase": 1.0, "real_mel": 0.5})
    batch, start, first, hist = int(tcfg["batch_size"]), time.time(), state.step, []
    max_minutes = tcfg.get("max_minutes")
    # mel_refine's updates are fixed arithmetic applied at inference; a stage may train through them
    # (the losses then see the refined output, and the trunk need not get every band's level right)
    through_refine = bool(tcfg.get("through_refine", False))
    while state.step < max_steps:
        mel, wav, real, has_real = (t.to(accelerator.device) for t in crops.draw(batch))
        y = state.model(mel, refine=through_refine)  # the trunk's own output unless the recipe trains through the updates
        parts = vocoder_losses(y, wav, mel_fn)
        loss = sum(w[k] * parts[k] for k in ("stft", "mel", "phase"))
        if has_real.sum() > 0:
            sel = has_real > 0
            parts["real_mel"] = F.l1_loss(mel_fn(y[sel]), mel_fn(real[sel]))
            loss = loss + w["real_mel"] * parts["real_mel"]
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(state.model.parameters(), 1.0)
        state.optimizer.step()
        state.lr_scheduler.step()
        state.optimizer.zero_grad()
        state.ema.step(state.model.parameters())
        state.step += 1
        hist.append({k: float(v.detach()) for k, v in parts.items()})
        if state.step % int(tcfg["log_every"]) == 0:
            recent = hist[-int(tcfg["log_every"]):]
            logger.info("step %d %s (%.0f s)", state.step, " ".join(
                f"{k} {np.mean([h[k] for h in recent if k in h]):.4f}" for k in ("stft", "mel", "phase")),
                time.time() - start)
        out_of_time = max_minutes is not None and time.time() - start > 60 * float(max_minutes)
        if state.step % int(tcfg["checkpoint_every"]) == 0 or state.step == max_steps or out_of_time:
            save_checkpoint(accelerator, out, state.step, int(tcfg.get("keep_checkpoints", 2)))
        if out_of_time:
            logger.info("stopping at step %d: max_minutes reached (run again to resume)", state.step)
            break
    model = accelerator.unwrap_model(state.model)
    state.ema.copy_to(model.parameters())
    model = model.to("cpu").float()
    meta = {"recipe": cfg, "steps": state.step, "resumed_from_step": first,
            "minutes": round((time.time() - start) / 60, 2),
            "final_losses": {k: float(np.mean([h[k] for h in hist[-200:] if k in h]))
                             for k in ("stft", "mel", "phase", "real_mel") if any(k in h for h in hist[-200:])},
            "data": {"seconds": blob["seconds"], "utterances": blob["utterances"], "blocks": len(blob["mels"]),
                     "kinds": {k: blob["kinds"].count(k) for k in set(blob["kinds"])}},
            "gflop_per_second_of_audio": round(model.gflop_per_second(), 3)}
    final = out / "final"
    model.save_pretrained(final)
    (final / "training.json").write_text(json.dumps(meta, indent=2, default=str))
    target = export_target(ecfg, state.step, int(tcfg["max_steps"]))
    if target:
        if target.exists():
            shutil.rmtree(target)
        model.to(torch.float16).save_pretrained(target)
        (target / "training.json").write_text(json.dumps(meta, indent=2, default=str))
    return final
