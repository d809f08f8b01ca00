"""The speech medium's diffusion model: frame-level prosody changes from content, speaker, emotion.

``ProsodyDenoiser`` is a diffusers ``ModelMixin`` (so it saves, loads and moves like any diffusers
model): a stack of dilated 1-D residual convolutions over the frame axis (receptive field about
2 s), each block modulated (FiLM) by the diffusion timestep and the speaker embedding. The noisy
sample is the (6, T) change trajectory (F0 semitones, gain, tilt, aperiodicity, local rate, formant
factor; see ``features.CHANGES``); the per-frame condition stacks the content cepstrum, the source prosody,
the steered emotion embedding and an "emotion given" flag. The emotion is fused at every reverse
step; dropping it (flag 0, embedding 0) during training gives the unconditional branch for
classifier-free guidance. Because the emotion enters per frame, an ``EmotionCurve`` changes the
emotion within an utterance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from generators.modeling_1d import FiLMResBlock


class ProsodyDenoiser(ModelMixin, ConfigMixin):
    """Predicts the diffusion target (v) of a (B, out_channels, T) change trajectory."""

    @register_to_config
    def __init__(
        self,
        out_channels: int = 6,
        cond_channels: int = 34,
        speaker_dim: int = 256,
        channels: int = 96,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8, 16),
        emb_dim: int = 128,
    ):
        super().__init__()
        self.time_proj = Timesteps(channels, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_emb = TimestepEmbedding(channels, emb_dim)
        self.speaker_proj = nn.Sequential(nn.Linear(speaker_dim, emb_dim), nn.SiLU(),
                                          nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv1d(out_channels + cond_channels, channels, 3, padding=1)
        self.blocks = nn.ModuleList(FiLMResBlock(channels, d, emb_dim) for d in dilations)
        self.norm_out = nn.GroupNorm(8, channels)
        self.conv_out = nn.Conv1d(channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        cond: torch.Tensor,
        speaker: torch.Tensor,
    ) -> torch.Tensor:
        b = sample.shape[0]
        t = torch.as_tensor(timestep, device=sample.device)
        if t.dim() == 0:
            t = t.expand(b)
        emb = self.time_emb(self.time_proj(t).to(sample.dtype))
        emb = F.silu(emb + self.speaker_proj(speaker.to(sample.dtype)))
        h = self.conv_in(torch.cat([sample, cond.to(sample.dtype)], dim=1))
        for block in self.blocks:
            h = block(h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))
