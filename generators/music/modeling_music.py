"""The music denoiser: a diffusers ``UNet2DModel`` over the piano-roll, conditioned by channels.

Input channels, all of shape (P pitches, T steps):

- 4 noisy roll channels (melody onsets/frames, accompaniment onsets/frames, in [-1, 1]);
- one channel per roll attribute, the standardised attribute value of each time step broadcast
  over pitch: the steered emotion embedding of the music medium (``mapping.py``), which may change
  from step to step under an ``EmotionCurve``;
- a scale channel: for each pitch row, how much its pitch class belongs to the mode asked for
  (``major * major_scale + (1 - major) * minor_scale``, the minor scale with both sevenths), so the
  mode, the strongest valence cue, reaches the network as a pattern over pitch and not only as a
  number;
- one "unconditional" flag channel (1 where the condition is dropped: classifier-free guidance);
- three pitch-position channels (cos and sin of the pitch class angle, and height), so that the
  convolutional network knows scale degrees (rolls are stored with the tonic at C).

Being fully convolutional, a model trained on 4-bar windows generates any whole number of bars in
one pass.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DModel

from generators.music.representation import NUM_CHANNELS, NUM_PITCHES, PITCH_LOW, ROLL_ATTRIBUTES

NUM_COND = len(ROLL_ATTRIBUTES) + 2
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)
NUM_POS = 3
IN_CHANNELS = NUM_CHANNELS + NUM_COND + NUM_POS


def build_unet(
    block_out_channels: tuple[int, ...] = (32, 64, 80, 96),
    layers_per_block: int = 1,
    norm_num_groups: int = 8,
) -> UNet2DModel:
    """The default architecture (about 2.3M parameters); tiny configs pass smaller widths."""
    n = len(block_out_channels)
    return UNet2DModel(
        sample_size=(NUM_PITCHES, 64),
        in_channels=IN_CHANNELS,
        out_channels=NUM_CHANNELS,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        norm_num_groups=norm_num_groups,
    )


def position_channels(num_steps: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(3, P, T): pitch-class angle (cos, sin) and normalised height, constant over time."""
    pitch = torch.arange(NUM_PITCHES, dtype=dtype, device=device) + PITCH_LOW
    angle = 2 * torch.pi * (pitch % 12) / 12
    height = (pitch - PITCH_LOW) / (NUM_PITCHES - 1) * 2 - 1
    pos = torch.stack([torch.cos(angle), torch.sin(angle), height])  # (3, P)
    return pos[:, :, None].expand(3, NUM_PITCHES, num_steps)


def scale_templates(dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(P,) membership of each pitch row in C major and in C minor."""
    pc = (torch.arange(NUM_PITCHES, device=device) + PITCH_LOW) % 12
    major = torch.zeros(NUM_PITCHES, dtype=dtype, device=device)
    minor = torch.zeros(NUM_PITCHES, dtype=dtype, device=device)
    for p in MAJOR_SCALE:
        major[pc == p] = 1.0
    for p in MINOR_SCALE:
        minor[pc == p] = 1.0
    return major, minor


def condition_channels(
    z_per_step: torch.Tensor, major_per_step: torch.Tensor, drop: torch.Tensor | None = None
) -> torch.Tensor:
    """Condition channels (B, A + 2, P, T).

    Args:
        z_per_step: (B, A, T) standardised roll attributes per step.
        major_per_step: (B, T) the raw ``major`` attribute per step, in [0, 1].
        drop: (B,) bool: those rows become the null condition (zeros, flag 1).
    """
    b, a, t = z_per_step.shape
    maj_t, min_t = scale_templates(z_per_step.dtype, z_per_step.device)
    m = major_per_step.clamp(0, 1)[:, None, :]  # (B, 1, T)
    scale = m * maj_t[None, :, None] + (1 - m) * min_t[None, :, None]  # (B, P, T)
    attrs = z_per_step[:, :, None, :].expand(b, a, NUM_PITCHES, t)
    flag = torch.zeros(b, 1, NUM_PITCHES, t, dtype=z_per_step.dtype, device=z_per_step.device)
    cond = torch.cat([attrs, scale[:, None], flag], dim=1)
    if drop is not None:
        null = torch.zeros_like(cond)
        null[:, -1] = 1.0
        cond = torch.where(drop[:, None, None, None], null, cond)
    return cond


def model_input(x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Concatenate the noisy roll (B, 4, P, T), condition and position channels."""
    b, _, _, t = x.shape
    pos = position_channels(t, x.dtype, x.device).unsqueeze(0).expand(b, -1, -1, -1)
    return torch.cat([x, cond.to(x.dtype), pos], dim=1)
