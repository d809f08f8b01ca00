"""EmotionBank: learnable emotion prototypes with attention, as a conditioning module.

After DICE-Talk's emotion bank: each category owns a few learnable prototype vectors; a query
made from the requested contributions and VAD point attends over all prototypes, so that a
generator's condition for "fearful" can borrow from "surprised" where training found them alike.
A direct path adds the requested categories' own prototypes, so the condition always carries the
asked-for emotion even before the attention has learned anything. ``null`` is the learned empty
condition used for classifier-free guidance.

It is a plain ``nn.Module``: generators hold it as a sub-module of their diffusers models, so it is
saved and loaded with their weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from conditioning.spec import EmotionSpec
from conditioning.vocabulary import CATEGORIES


class EmotionBank(nn.Module):
    """Prototypes per category + attention -> one emotion embedding per sample.

    Args:
        embed_dim: size of the output embedding.
        prototypes_per_category: learnable vectors per category.
        num_heads: attention heads (must divide ``embed_dim``).

    Example:
        >>> bank = EmotionBank(embed_dim=16, prototypes_per_category=2, num_heads=2)
        >>> c, vad = EmotionBank.spec_tensors([EmotionSpec.from_category("sad", 0.5)])
        >>> bank(c, vad).shape
        torch.Size([1, 16])
    """

    def __init__(
        self, embed_dim: int = 64, prototypes_per_category: int = 4, num_heads: int = 4
    ) -> None:
        super().__init__()
        k = len(CATEGORIES)
        self.embed_dim = embed_dim
        self.num_categories = k
        self.prototypes_per_category = prototypes_per_category
        self.prototypes = nn.Parameter(torch.randn(k, prototypes_per_category, embed_dim) * 0.02)
        self.query = nn.Linear(k + 3, embed_dim)
        self.attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(embed_dim)
        self.null = nn.Parameter(torch.zeros(embed_dim))

    @staticmethod
    def spec_tensors(
        specs: list[EmotionSpec],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Contributions (B, K) and VAD points (B, 3) for a batch of specs."""
        c = np.stack([s.contributions() for s in specs])
        vad = np.array([s.vad for s in specs])
        return (
            torch.as_tensor(c, dtype=dtype, device=device),
            torch.as_tensor(vad, dtype=dtype, device=device),
        )

    def forward(
        self,
        contributions: torch.Tensor,
        vad: torch.Tensor,
        drop: torch.Tensor | None = None,
        return_attention: bool = False,
    ):
        """
        Args:
            contributions: (B, K) ``w_k * intensity`` per category.
            vad: (B, 3) VAD points.
            drop: optional (B,) bool: replace those rows by the null condition (CFG training).
        Returns:
            (B, D) embeddings, and the (B, K*P) attention weights when ``return_attention``.
        """
        b = contributions.shape[0]
        q = self.query(torch.cat([contributions, vad], dim=-1)).unsqueeze(1)  # (B, 1, D)
        keys = self.prototypes.reshape(1, -1, self.embed_dim).expand(b, -1, -1)  # (B, K*P, D)
        attended, weights = self.attention(q, keys, keys, need_weights=True)
        direct = contributions @ self.prototypes.mean(1)  # (B, D)
        out = self.norm(attended.squeeze(1) + direct)
        if drop is not None:
            out = torch.where(drop[:, None], self.null.expand_as(out), out)
        if return_attention:
            return out, weights.squeeze(1)
        return out

    def null_condition(self, batch_size: int) -> torch.Tensor:
        """(B, D) null condition for classifier-free guidance."""
        return self.null.unsqueeze(0).expand(batch_size, -1)

    @torch.no_grad()
    def category_similarity(self) -> torch.Tensor:
        """(K, K) cosine similarity of the categories' mean prototypes."""
        m = nn.functional.normalize(self.prototypes.mean(1), dim=-1)
        return m @ m.T
