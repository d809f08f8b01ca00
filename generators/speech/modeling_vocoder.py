"""FastVocoder: a CPU-fast mel -> waveform network for the same features as HiFi-GAN V1.

HiFi-GAN V1 upsamples the mel frames 256x through transposed convolutions and runs most of its
51 GFLOP per second of audio at the sample rate. This network stays at the frame rate (86 frames
per second at hop 256) and predicts each frame's complex spectrum, which an inverse STFT turns
into samples, after Vocos (Siuzdenko, 2023) and iSTFTNet (Kaneko et al., 2022):

    mel (B, 80, T) -> Conv1d k7 -> LayerNorm -> N x ConvNeXt block (depthwise k7, LayerNorm,
    pointwise dim -> mult*dim -> dim, GELU, layer scale; Liu et al. 2022) -> LayerNorm ->
    Linear -> log-magnitude and phase of n_fft/2+1 bins -> inverse STFT (hop 256, Hann, "same"
    padding) -> (B, T * 256) samples

With ``level_path`` (the shipped weights) each frame's level goes around the trunk: the trunk sees
the mel less the frame's level (and the level's steps to its neighbours), and the level is added
to the predicted log-magnitudes. The LayerNorms normalise each frame's features, so without it the
trunk must infer the level from the spectrum's shape, and on real recordings it did not (copies
came out up to 0.75 nepers too quiet at one level and 0.4 too loud 18 dB lower).

The default size (dim 256, 6 blocks, mult 3) costs about 0.4 GFLOP per second of audio, a
hundredth of V1's; ``generators/speech/README.md`` says how the size was chosen. The mel front end
is the one V1 was trained with (``generators.audio_features.MelSpectrogram``: 22,050 Hz, n_fft
1024, hop 256, 80 slaney bands 0-8 kHz, natural log of the magnitude). The network is trained by
distillation from V1 (``affect train vocoder``, ``generators/speech/training_vocoder.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k7) -> LayerNorm -> pointwise expand -> GELU -> pointwise -> layer scale,
    with a residual connection; shape-preserving on (B, C, T)."""

    def __init__(self, dim: int, mult: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, mult * dim)
        self.pw2 = nn.Linear(mult * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.dwconv(x).transpose(1, 2)  # (B, T, C)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class FastVocoder(ModelMixin, ConfigMixin):
    """``forward(mel (B, n_mels, T)) -> wav (B, T * hop)``: a frame-rate network with an
    inverse-STFT output.

    Args:
        n_mels: mel bands of the input (80).
        dim: channels of the ConvNeXt trunk.
        num_layers: ConvNeXt blocks.
        mult: expansion of each block's pointwise layers.
        n_fft: FFT size of the inverse STFT (its window is as long).
        hop: samples per mel frame (256 at 22,050 Hz).
        layer_scale: initial value of each block's residual scale.
        level_path: carry each frame's level around the trunk (``frame_level``): the trunk sees the
            mel less the frame's level and the level's steps to its neighbours, and the level is
            added to the predicted log-magnitudes, so that a louder input gives a louder output by
            construction instead of by what the trunk infers from the spectrum's shape.
    """

    @register_to_config
    def __init__(self, n_mels: int = 80, dim: int = 256, num_layers: int = 6, mult: int = 3,
                 n_fft: int = 1024, hop: int = 256, layer_scale: float = 0.1, level_path: bool = False):
        super().__init__()
        self.embed = nn.Conv1d(n_mels + (2 if level_path else 0), dim, 7, padding=3)
        self.norm_in = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, mult, layer_scale) for _ in range(num_layers))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, n_fft + 2)  # log-magnitude and phase of n_fft // 2 + 1 bins
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def hop(self) -> int:  # the interface ``pipeline_speech.vocode`` reads, as on HiFiGANGenerator
        return self.config.hop

    @staticmethod
    def frame_level(mel: torch.Tensor) -> torch.Tensor:
        """Each frame's level, (B, 1, T): the natural log of the RMS over bands of the mel
        magnitudes. Playing the signal g times louder adds log g to it (bands at the floor aside)."""
        return 0.5 * (torch.logsumexp(2.0 * mel, dim=1, keepdim=True) - math.log(mel.shape[1]))

    def spectrum(self, mel: torch.Tensor) -> torch.Tensor:
        """The complex spectrum of every frame, (B, n_fft // 2 + 1, T)."""
        level = None
        if self.config.level_path:  # the trunk sees each frame's shape and the level's steps
            level = self.frame_level(mel)
            step = level[..., 1:] - level[..., :-1]
            mel = torch.cat([mel - level, F.pad(step, (1, 0)), F.pad(step, (0, 1))], dim=1)
        x = self.embed(mel)  # (B, C, T)
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.norm_out(x.transpose(1, 2))).transpose(1, 2)  # (B, n_fft + 2, T)
        log_mag, phase = x.float().chunk(2, dim=1)
        if level is not None:  # the frame's level added back: the output follows the input's level
            log_mag = log_mag + level.float()
        mag = torch.exp(log_mag.clamp(max=7.0))  # clamped: an early step cannot overflow
        return torch.polar(mag, phase)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """Inverse STFT with "same" padding: T frames -> T * hop samples, frame t centred on
        sample t * hop + hop / 2 - 1 of the padded signal, as the mel front end frames it."""
        n_fft, hop = self.config.n_fft, self.config.hop
        b, _, t = spec.shape
        frames = torch.fft.irfft(spec, n=n_fft, dim=1) * self.window[None, :, None]  # (B, n_fft, T)
        length = (t - 1) * hop + n_fft
        y = F.fold(frames, (1, length), kernel_size=(1, n_fft), stride=(1, hop))[:, 0, 0]  # (B, L)
        env = F.fold((self.window ** 2)[None, :, None].expand(1, n_fft, t), (1, length),
                     kernel_size=(1, n_fft), stride=(1, hop))[0, 0, 0]  # (L,)
        pad = (n_fft - hop) // 2
        return (y / env.clamp_min(1e-8))[:, pad : pad + t * hop]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.istft(self.spectrum(mel))

    def gflop_per_second(self, sample_rate: int = 22050) -> float:
        """Multiply-adds x 2 of the network per second of audio (convolutions, linear layers and
        the inverse FFT), for the README's comparison."""
        c = self.config
        per_frame = (c.n_mels + (2 if c.level_path else 0)) * c.dim * 7 + c.num_layers * (c.dim * 7 + 2 * c.dim * c.mult * c.dim) \
            + c.dim * (c.n_fft + 2) + 2.5 * c.n_fft * math.log2(c.n_fft) + c.n_fft
        return 2 * per_frame * sample_rate / c.hop / 1e9
