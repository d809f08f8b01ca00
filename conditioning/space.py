"""EmotionSpace: the coordinates every medium shares, and transfer between media.

The shared coordinates of an emotion are its contribution vector over the vocabulary
(``c_k = w_k * intensity``, see ``spec.py``) and the VAD point it implies. Each medium registers
the ``DirectionVectorModel`` fitted in its own embedding space; because all of them are indexed by
the same categories (and VAD axes), one spec steers every medium, and an embedding read in one
medium can be re-expressed in another: cross-modal emotion transfer (after C-MET, which learns the
mapping of emotion displacement between speech and face; here the mapping goes through the shared
category/VAD coordinates instead of being learned from paired data).

Example:
    >>> import numpy as np
    >>> from conditioning import DirectionVectorModel, EmotionSpace, parse_emotion
    >>> rng = np.random.default_rng(0)
    >>> def medium(dim, seed):
    ...     r = np.random.default_rng(seed)
    ...     x, y = [], []
    ...     for k, off in [("neutral", 0), ("happy", 3), ("sad", -3)]:
    ...         x.append(r.normal(0, .1, (40, dim)) + off * np.eye(dim)[0 if k == "happy" else 1])
    ...         y += [k] * 40
    ...     return DirectionVectorModel.fit(np.concatenate(x), y)
    >>> space = EmotionSpace({"voice": medium(6, 1), "face": medium(4, 2)})
    >>> face_emb = space.transfer(parse_emotion("happy@0.5"), "face")
    >>> space.project("face", face_emb).dominant
    'happy'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from conditioning.directions import DirectionVectorModel
from conditioning.parsing import parse_emotion
from conditioning.spec import EmotionSpec


class EmotionSpace:
    """A registry of per-medium direction models over the shared vocabulary.

    Args:
        media: medium name -> its ``DirectionVectorModel``.
    """

    def __init__(self, media: dict[str, DirectionVectorModel] | None = None) -> None:
        self.media: dict[str, DirectionVectorModel] = dict(media or {})

    def register(self, medium: str, model: DirectionVectorModel) -> None:
        self.media[medium] = model

    def _model(self, medium: str) -> DirectionVectorModel:
        if medium not in self.media:
            known = ", ".join(sorted(self.media)) or "none registered"
            raise ValueError(f"unknown medium {medium!r}; known: {known}")
        return self.media[medium]

    @staticmethod
    def coordinates(spec: EmotionSpec | str) -> dict:
        """The shared coordinates of a spec: contributions per category and the VAD point."""
        spec = parse_emotion(spec)
        from conditioning.vocabulary import CATEGORIES

        c = spec.contributions()
        return {"contributions": dict(zip(CATEGORIES, c.tolist())), "vad": spec.vad}

    def project(self, medium: str, embedding: np.ndarray | torch.Tensor) -> EmotionSpec:
        """Read an embedding of ``medium`` into a spec in shared coordinates."""
        return self._model(medium).read(embedding)

    def transfer(
        self,
        spec: EmotionSpec | str,
        to_medium: str,
        neutral: np.ndarray | torch.Tensor | None = None,
    ):
        """Steer ``to_medium``'s neutral embedding (or a given one) to ``spec``."""
        model = self._model(to_medium)
        return model.steer(model.neutral if neutral is None else neutral, parse_emotion(spec))

    def transfer_embedding(
        self,
        from_medium: str,
        embedding: np.ndarray | torch.Tensor,
        to_medium: str,
        neutral: np.ndarray | torch.Tensor | None = None,
    ):
        """Cross-modal transfer: read an embedding of one medium, apply it to another."""
        return self.transfer(self.project(from_medium, embedding), to_medium, neutral)

    def distance(self, a: EmotionSpec | str, b: EmotionSpec | str) -> float:
        """Euclidean distance of two specs' contribution vectors (0 = the same emotion)."""
        return float(
            np.linalg.norm(parse_emotion(a).contributions() - parse_emotion(b).contributions())
        )

    def save(self, directory: str | Path) -> None:
        for medium, model in self.media.items():
            model.save(directory, prefix=f"{medium}.")

    @classmethod
    def load(cls, directory: str | Path) -> EmotionSpace:
        directory = Path(directory)
        media = {}
        for path in sorted(directory.glob("*.directions.json")):
            medium = path.name[: -len(".directions.json")]
            media[medium] = DirectionVectorModel.load(directory, prefix=f"{medium}.")
        return cls(media)
