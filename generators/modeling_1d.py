"""What the frame-sequence diffusion models of the media share: a FiLM-modulated residual block
over the time axis, and sampling of long sequences in overlapping, cross-faded windows with
classifier-free guidance on the emotion channels of the condition."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class FiLMResBlock(nn.Module):
    """Dilated 1-D convolution residual block, modulated (scale, shift) by an embedding."""

    def __init__(self, channels: int, dilation: int, emb_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return x + h


def window_starts(total: int, window: int, overlap: int) -> list[int]:
    """Start frames of windows of ``window`` frames covering ``total``, overlapping ``overlap``."""
    win = min(window, total)
    starts = list(range(0, total - win + 1, window - overlap))
    if starts[-1] + win < total:
        starts.append(total - win)  # the last window ends at the last frame
    return starts


@dataclass
class WindowRequest:
    """One sequence to sample: its (T, C) per-frame condition, its own noise ``generator``, its
    guidance scale and starting-noise scale, and ``extra``: a per-sequence tensor handed to the
    model with each of its windows (the speech denoiser's speaker embedding), or None."""

    cond: np.ndarray
    generator: torch.Generator | None = None
    guidance: float = 1.5
    noise_scale: float = 1.0
    extra: torch.Tensor | None = None


@torch.inference_mode()
def sample_windows(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    scheduler,
    cond: np.ndarray,
    out_channels: int,
    n_emotion: int,
    steps: int,
    guidance: float,
    window: int,
    overlap: int,
    device: torch.device | str,
    dtype: torch.dtype,
    generator: torch.Generator | None = None,
    noise_scale: float = 1.0,
) -> np.ndarray:
    """Reverse diffusion over a (T, C) per-frame condition in overlapping windows.

    ``model(x, t, c)`` predicts the target for a batch of windows; the last ``n_emotion`` condition
    channels are the emotion (zeroed for the unconditional branch of classifier-free guidance).
    ``noise_scale`` scales the starting noise (a sampling temperature: below 1, samples keep
    closer to the condition's most likely motion and vary less between seeds).
    Windows are cross-faded linearly over their overlap. Returns (T, out_channels) float32.
    """
    request = WindowRequest(cond, generator, guidance, noise_scale)
    return sample_windows_batch(lambda x, t, c, extra: model(x, t, c), scheduler, [request],
                                out_channels, n_emotion, steps, window, overlap, device, dtype)[0]


@torch.inference_mode()
def sample_windows_batch(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    scheduler,
    requests: list[WindowRequest],
    out_channels: int,
    n_emotion: int,
    steps: int,
    window: int,
    overlap: int,
    device: torch.device | str,
    dtype: torch.dtype,
) -> list[np.ndarray]:
    """``sample_windows`` for several sequences at once: the windows of every request that has
    the same window length and guidance scale go through the denoiser together, as one batch
    (``model(x, t, c, extra)``, ``extra`` stacked per window, or None). Each request draws its
    starting noise from its own generator, exactly as alone, so a batched sequence differs from
    the same sequence sampled alone only by the rounding of a larger batch's kernels. Returns one
    (T, out_channels) float32 array per request, in order."""
    plans = []
    for r in requests:
        T = len(r.cond)
        win = min(window, T)
        starts = window_starts(T, window, overlap)
        noise = torch.randn((len(starts), out_channels, win), generator=r.generator, dtype=torch.float32)
        plans.append((win, starts, noise * r.noise_scale))
    groups: dict[tuple, list[int]] = {}
    for i, (r, (win, _, _)) in enumerate(zip(requests, plans)):
        groups.setdefault((win, float(r.guidance)), []).append(i)
    results: list[np.ndarray | None] = [None] * len(requests)
    for (win, guidance), members in groups.items():
        c = torch.cat([torch.from_numpy(np.stack([requests[i].cond[s : s + win] for s in plans[i][1]]))
                       for i in members]).transpose(1, 2).to(device, dtype)
        x = torch.cat([plans[i][2] for i in members]).to(device, dtype)
        extras = None
        if requests[members[0]].extra is not None:
            extras = torch.cat([requests[i].extra.reshape(1, -1).expand(len(plans[i][1]), -1)
                                for i in members]).to(device, dtype)
        uncond = c.clone()
        uncond[:, -n_emotion:] = 0
        scheduler.set_timesteps(steps, device=device)
        use_cfg = guidance != 1.0
        for t in scheduler.timesteps:
            if use_cfg:
                both_extra = None if extras is None else torch.cat([extras, extras])
                v_c, v_u = model(torch.cat([x, x]), t, torch.cat([c, uncond]), both_extra).chunk(2)
                v = v_u + guidance * (v_c - v_u)
            else:
                v = model(x, t, c, extras)
            x = scheduler.step(v, t, x).prev_sample
        windows = x.float().cpu().numpy().transpose(0, 2, 1)  # (windows, win, C)
        at = 0
        for i in members:
            starts = plans[i][1]
            results[i] = _cross_fade(windows[at : at + len(starts)], starts, len(requests[i].cond),
                                     win, overlap, out_channels)
            at += len(starts)
    return results


def _cross_fade(x: np.ndarray, starts: list[int], T: int, win: int, overlap: int,
                out_channels: int) -> np.ndarray:
    """Windows (n, win, C) starting at ``starts`` -> (T, C), cross-faded linearly over overlaps."""
    out = np.zeros((T, out_channels))
    weight = np.zeros((T, 1))
    ramp = np.linspace(0, 1, overlap + 2)[1:-1]
    for i, s in enumerate(starts):
        w = np.ones(win)
        if i > 0:
            w[:overlap] = ramp
        if i < len(starts) - 1:
            w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
        out[s : s + win] += x[i] * w[:, None]
        weight[s : s + win] += w[:, None]
    return (out / np.maximum(weight, 1e-6)).astype(np.float32)
