"""The face medium's diffusion model: rig parameters over time from speech and emotion.

``MotionDenoiser`` is a diffusers ``ModelMixin``: dilated 1-D residual convolutions over 25 fps
video frames (receptive field about 5 s), each block modulated (FiLM) by the diffusion timestep.
The noisy sample is the (18, T) trajectory of the rig's parameters (``rig.MOTION``: 16 emotion
action units + lip pucker and lip press); the per-frame condition stacks the speech features
(80 log-mel bands), the steered emotion embedding (16 AU intensities) and an "emotion given"
flag. The emotion is fused at every reverse step, per frame, so an ``EmotionCurve`` changes the
expression during the clip; dropping it in training gives the unconditional branch for
classifier-free guidance (after the audio-driven motion diffusion of EMOTE / EmoFace-style
talking-head models, at a far smaller scale).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from generators.modeling_1d import FiLMResBlock


class MotionDenoiser(ModelMixin, ConfigMixin):
    """Predicts the diffusion target (v) of a (B, out_channels, T) rig trajectory."""

    @register_to_config
    def __init__(
        self,
        out_channels: int = 18,
        cond_channels: int = 97,
        channels: int = 96,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 1, 2, 4, 8),
        emb_dim: int = 128,
    ):
        super().__init__()
        self.time_proj = Timesteps(channels, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_emb = TimestepEmbedding(channels, emb_dim)
        self.conv_in = nn.Conv1d(out_channels + cond_channels, channels, 3, padding=1)
        self.blocks = nn.ModuleList(FiLMResBlock(channels, d, emb_dim) for d in dilations)
        self.norm_out = nn.GroupNorm(8, channels)
        self.conv_out = nn.Conv1d(channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int,
                cond: torch.Tensor) -> torch.Tensor:
        b = sample.shape[0]
        t = torch.as_tensor(timestep, device=sample.device)
        if t.dim() == 0:
            t = t.expand(b)
        emb = F.silu(self.time_emb(self.time_proj(t).to(sample.dtype)))
        h = self.conv_in(torch.cat([sample, cond.to(sample.dtype)], dim=1))
        for block in self.blocks:
            h = block(h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))
