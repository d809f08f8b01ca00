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

With ``mel_refine`` (the shipped config: 2) the output is then pulled towards its own input: each
of a few multiplicative updates analyses the waveform made so far with the front end's framing,
compares its mel with the input mel band by band, and scales every STFT bin by the correction of
the bands it belongs to (the normalised filterbank spreads each band's log-ratio over its bins),
then inverts again. The trunk's magnitudes are close but not exact where the training data were
thin (the pauses and the empty top strip of 16 kHz recordings, which it filled with a faint noise
floor); the updates take the measured mel of the output itself, phase effects included, so the
correction holds after the inverse STFT. The updates are fixed arithmetic (no weights); bins
above the top band (8 kHz) keep the trunk's magnitudes.

The default size (dim 256, 6 blocks, mult 3) costs about 0.5 GFLOP per second of audio with its
two updates, a hundredth of V1's; ``generators/speech/README.md`` says how the size was chosen. The mel front end
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
        mel_refine: multiplicative updates that pull the mel of the output to the input mel
            (``refine``); 0 returns the trunk's spectrum as it is.
        sample_rate, f_min, f_max, log_floor: the mel front end the input comes from (the
            updates rebuild its filterbank; slaney scale and norm, magnitude, natural log).
    """

    @register_to_config
    def __init__(self, n_mels: int = 80, dim: int = 256, num_layers: int = 6, mult: int = 3,
                 n_fft: int = 1024, hop: int = 256, layer_scale: float = 0.1, level_path: bool = False,
                 mel_refine: int = 0, sample_rate: int = 22050, f_min: float = 0.0, f_max: float = 8000.0,
                 log_floor: float = 1e-5):
        super().__init__()
        import torchaudio

        fb = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate,
                                                   norm="slaney", mel_scale="slaney")  # (bins, mels)
        self.register_buffer("fb", fb.T.contiguous(), persistent=False)  # (mels, bins), as the front end
        # each bin's share of the bands it lies in (rows sum to 1; bins above f_max have none)
        self.register_buffer("spread", fb / fb.sum(1, keepdim=True).clamp_min(1e-12), persistent=False)
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

    def analyse(self, wav: torch.Tensor) -> torch.Tensor:
        """The STFT of ``wav`` (B, samples) framed as the mel front end frames it (reflect padding
        of (n_fft - hop) / 2 each side, a frame every hop): (B, n_fft // 2 + 1, samples / hop)."""
        n_fft, hop = self.config.n_fft, self.config.hop
        pad = (n_fft - hop) // 2
        x = F.pad(wav[:, None], (pad, pad), mode="reflect")[:, 0]
        return torch.stft(x.float(), n_fft, hop, n_fft, self.window.float(), center=False, return_complex=True)

    def refine(self, spec: torch.Tensor, mel: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` multiplicative updates of ``spec`` towards the input ``mel``: the output so far
        is analysed, each band's log-ratio of input to output mel is spread over its bins, and every
        bin (with the phase the analysis found) is scaled by it. Returns the updated spectrum."""
        mel = mel.float()
        floor = math.log(self.config.log_floor)
        fb, spread = self.fb.float(), self.spread.float()
        for _ in range(steps):
            spec = self.analyse(self.istft(spec))
            out = torch.log((fb @ spec.abs()).clamp_min(self.config.log_floor))
            gain = spread @ (mel.clamp_min(floor) - out)  # (B, bins, T), log
            spec = spec * torch.exp(gain)
        return spec

    def forward(self, mel: torch.Tensor, refine: bool = True) -> torch.Tensor:
        """mel (B, n_mels, T) -> wav (B, T * hop); ``refine=False`` skips the ``mel_refine``
        updates (training fits the trunk's own output; the updates are fixed arithmetic)."""
        spec = self.spectrum(mel)
        if refine and self.config.mel_refine:
            spec = self.refine(spec, mel, int(self.config.mel_refine))
        return self.istft(spec)

    def gflop_per_second(self, sample_rate: int = 22050) -> float:
        """Multiply-adds x 2 of the network per second of audio (convolutions, linear layers, the
        inverse FFT and the ``mel_refine`` updates' FFTs and filterbank products), for the
        README's comparison."""
        c = self.config
        per_frame = (c.n_mels + (2 if c.level_path else 0)) * c.dim * 7 + c.num_layers * (c.dim * 7 + 2 * c.dim * c.mult * c.dim) \
            + c.dim * (c.n_fft + 2) + 2.5 * c.n_fft * math.log2(c.n_fft) + c.n_fft \
            + c.mel_refine * (5 * c.n_fft * math.log2(c.n_fft) + 2 * c.n_mels * (c.n_fft // 2 + 1) + 3 * c.n_fft)
        return 2 * per_frame * sample_rate / c.hop / 1e9
