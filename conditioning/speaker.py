"""Speaker embedding: the GE2E speaker encoder (256-d, L2-normalised), the project's own module.

Architecture after Wan et al. (2018), "Generalized End-to-End Loss for Speaker Verification":
a 3-layer LSTM (256 units) over 40-band mel frames (16 kHz, 25 ms window, 10 ms hop), the last
hidden state through a linear layer and a ReLU, L2-normalised. An utterance is cut into
1.6 s partials (about 1.3 per second) whose embeddings are averaged. The default weights are the
``pretrained.pt`` that ships inside the PyPI package ``Resemblyzer`` 0.1.4 (Apache-2.0), read
with ``torch.load(weights_only=True)``; the package's own code (and its librosa / webrtcvad
dependencies) is not used.

Used by the speech generator as its speaker condition, and by the evaluators for speaker
similarity (cosine between embeddings).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16000
N_MELS = 40
WIN = 400  # 25 ms
HOP = 160  # 10 ms
PARTIAL_FRAMES = 160  # 1.6 s
TARGET_DBFS = -30.0


class SpeakerEncoder(nn.Module):
    def __init__(self, n_mels: int = N_MELS, hidden: int = 256, layers: int = 3, dim: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, dim)
        import torchaudio

        fb = torchaudio.functional.melscale_fbanks(
            WIN // 2 + 1, 0.0, SAMPLE_RATE / 2, n_mels, SAMPLE_RATE,
            norm="slaney", mel_scale="slaney",
        )
        self.register_buffer("fb", fb.T.contiguous(), persistent=False)
        self.register_buffer("window", torch.hann_window(WIN), persistent=False)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, frames, 40) power mel -> (B, 256) unit embeddings."""
        _, (hidden, _) = self.lstm(mels)
        e = torch.relu(self.linear(hidden[-1]))
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-8)

    def mel(self, wav16: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.asarray(wav16, dtype=np.float32))
        spec = torch.stft(x, WIN, HOP, WIN, self.window, center=True, pad_mode="constant",
                          return_complex=True).abs() ** 2
        return (self.fb @ spec).T  # (frames, 40)

    @torch.inference_mode()
    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """Utterance embedding (256,) of a mono waveform at any rate."""
        from conditioning.audio import resample

        wav16 = _prepare(resample(np.asarray(wav, dtype=np.float32), sample_rate, SAMPLE_RATE))
        mels = self.mel(wav16)
        n = mels.shape[0]
        step = int(round(SAMPLE_RATE / 1.3 / HOP))  # ~1.3 partials per second
        starts = list(range(0, max(1, n - PARTIAL_FRAMES + step), step))
        if len(starts) > 1 and (n - starts[-1]) < 0.75 * PARTIAL_FRAMES:
            starts = starts[:-1]  # drop a short last partial, as the reference inference does
        parts = []
        for s in starts:
            p = mels[s : s + PARTIAL_FRAMES]
            if p.shape[0] < PARTIAL_FRAMES:
                p = torch.nn.functional.pad(p, (0, 0, 0, PARTIAL_FRAMES - p.shape[0]))
            parts.append(p)
        e = self(torch.stack(parts)).mean(0)
        return (e / e.norm()).numpy()


def _prepare(wav16: np.ndarray) -> np.ndarray:
    """Normalise level to -30 dBFS and drop pauses longer than ~0.2 s (energy based)."""
    rms = np.sqrt(np.mean(wav16.astype(np.float64) ** 2) + 1e-12)
    wav16 = wav16 * (10 ** (TARGET_DBFS / 20) / rms)
    n = 480  # 30 ms windows
    k = len(wav16) // n
    if k < 8:
        return wav16.astype(np.float32)
    frames = wav16[: k * n].reshape(k, n)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    voiced = db > db.max() - 40
    smooth = np.convolve(voiced.astype(float), np.ones(8) / 8, mode="same") > 0.0
    kept = frames[smooth].reshape(-1)
    return (kept if len(kept) > 0.5 * SAMPLE_RATE else wav16).astype(np.float32)


def packaged_weights() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the speaker encoder's weights come from the PyPI package Resemblyzer; install it "
            "with: pip install --no-deps Resemblyzer==0.1.4"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"


@functools.lru_cache(maxsize=2)
def load_speaker_encoder(path: str | None = None) -> SpeakerEncoder:
    """The GE2E encoder with the packaged weights (or a checkpoint with the same keys)."""
    ckpt = torch.load(str(path or packaged_weights()), map_location="cpu", weights_only=True)
    state = ckpt.get("model_state", ckpt)
    model = SpeakerEncoder()
    model.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")})
    return model.eval()


def speaker_similarity(a: np.ndarray, sr_a: int, b: np.ndarray, sr_b: int) -> float:
    """Cosine similarity of the two recordings' speaker embeddings (1 = same voice)."""
    enc = load_speaker_encoder()
    return float(np.dot(enc.embed(a, sr_a), enc.embed(b, sr_b)))
