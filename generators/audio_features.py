"""Audio features shared by the media: the log-mel spectrogram of HiFi-GAN's front end.

The speech vocoder is driven by it and the talking-head motion model listens through it, so it
lives here, beside the media rather than inside one of them (a medium never imports another).

Mel front end (the one the HiFi-GAN weights were trained with): 22,050 Hz, n_fft 1024, hop 256,
Hann window 1024, 80 slaney mel bands 0-8000 Hz, magnitude (not power), natural log clamped at 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MelConfig:
    """The mel spectrogram the vocoder expects."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop: int = 256
    win: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5


MEL = MelConfig()


class MelSpectrogram(nn.Module):
    """Log-magnitude mel spectrogram matching the HiFi-GAN training front end."""

    def __init__(self, cfg: MelConfig = MEL):
        super().__init__()
        import torchaudio

        self.cfg = cfg
        fb = torchaudio.functional.melscale_fbanks(
            cfg.n_fft // 2 + 1, cfg.fmin, cfg.fmax, cfg.n_mels, cfg.sample_rate,
            norm="slaney", mel_scale="slaney",
        )
        self.register_buffer("fb", fb.T.contiguous(), persistent=False)  # (mels, freqs)
        freqs = torch.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
        # centre frequency of each mel band (its filter's centre of mass), for spectral tilts
        self.centres = ((fb * freqs[:, None]).sum(0) / fb.sum(0).clamp_min(1e-9)).numpy()
        self.register_buffer("window", torch.hann_window(cfg.win), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) or (T,) waveform in [-1, 1] -> (B, n_mels, frames) natural-log mel."""
        squeeze = wav.dim() == 1
        if squeeze:
            wav = wav[None]
        pad = (self.cfg.n_fft - self.cfg.hop) // 2
        x = F.pad(wav[:, None], (pad, pad), mode="reflect")[:, 0]
        spec = torch.stft(x, self.cfg.n_fft, self.cfg.hop, self.cfg.win, self.window,
                          center=False, return_complex=True).abs()
        mel = torch.log(torch.clamp(self.fb @ spec, min=self.cfg.log_floor))
        return mel[0] if squeeze else mel
