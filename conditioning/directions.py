"""DirectionVectorModel: emotion as directions in a medium's embedding space.

After EmoReg's directional latent vectors (intensity control by moving an emotion embedding
along a per-emotion direction from neutral). Fitted on a medium's emotion embeddings:

- a centre per category, the neutral centre ``n``;
- a unit direction per category, ``d_k = (centre_k - n) / |centre_k - n|``;
- a typical length per category, ``L_k``: the median projection of that category's embeddings on
  ``d_k`` (robust to outliers, and what "intensity 1" means for that medium);
- three VAD axes: the least-squares linear map from VAD anchor offsets to centre offsets, used to
  steer a category the medium has no data for, and to steer by an explicit VAD point.

``steer(neutral, spec) = neutral + sum_k c_k * L_k * d_k`` with ``c_k = w_k * intensity``; the
inverse, ``read(embedding) -> EmotionSpec``, is the non-negative least-squares fit of the offset
from ``n`` on the scaled directions. Saved as safetensors (tensors) + JSON (names and metadata).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from conditioning.spec import EmotionSpec
from conditioning.vocabulary import CATEGORIES, NEUTRAL, anchor_matrix

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "directions.safetensors"
CONFIG_NAME = "directions.json"


def _as_2d(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


class DirectionVectorModel:
    """Per-category directions from neutral in one embedding space.

    Args:
        neutral: (D,) neutral centre.
        directions: category -> (D,) unit direction.
        lengths: category -> typical length along the direction (> 0).
        centres: category -> (D,) centre (kept for reading back and diagnostics).
        axes: optional (3, D): embedding offset per unit of valence, arousal, dominance.
        meta: free JSON-able metadata (medium, encoder, data it was fitted on).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(0, .1, (50, 4)), rng.normal(0, .1, (50, 4)) + [2, 0, 0, 0]])
        >>> dvm = DirectionVectorModel.fit(x, ["neutral"] * 50 + ["happy"] * 50)
        >>> [round(float(v), 1) + 0.0 for v in dvm.directions["happy"]]
        [1.0, 0.0, 0.0, 0.0]
    """

    def __init__(
        self,
        neutral: np.ndarray,
        directions: dict[str, np.ndarray],
        lengths: dict[str, float],
        centres: dict[str, np.ndarray] | None = None,
        axes: np.ndarray | None = None,
        meta: dict | None = None,
    ) -> None:
        self.neutral = np.asarray(neutral, dtype=np.float64).reshape(-1)
        self.dim = self.neutral.shape[0]
        unknown = [k for k in directions if k not in CATEGORIES or k == NEUTRAL]
        if unknown:
            raise ValueError(
                f"directions are named by the vocabulary's non-neutral categories, got {unknown}"
            )
        self.directions = {
            k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in directions.items()
        }
        self.lengths = {k: float(v) for k, v in lengths.items()}
        for k, d in self.directions.items():
            if d.shape[0] != self.dim:
                raise ValueError(f"direction {k!r} has dimension {d.shape[0]}, expected {self.dim}")
            if k not in self.lengths or not self.lengths[k] > 0:
                raise ValueError(f"direction {k!r} needs a length > 0")
        self.centres = {
            k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in (centres or {}).items()
        }
        self.axes = (
            None if axes is None else np.asarray(axes, dtype=np.float64).reshape(3, self.dim)
        )
        self.meta = dict(meta or {})

    # -- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray | torch.Tensor,
        labels: list[str],
        *,
        neutral_label: str = NEUTRAL,
        meta: dict | None = None,
    ) -> DirectionVectorModel:
        """Fit on labelled embeddings.

        Args:
            embeddings: (N, D).
            labels: N vocabulary category names; ``neutral_label`` marks the neutral ones. When no
                embedding is neutral, the mean of all embeddings stands in (logged).
        """
        x = _as_2d(embeddings, "embeddings")
        labels = [str(lab) for lab in labels]
        if len(labels) != x.shape[0]:
            raise ValueError(f"got {x.shape[0]} embeddings but {len(labels)} labels")
        bad = sorted({lab for lab in labels if lab not in CATEGORIES})
        if bad:
            raise ValueError(f"unknown labels {bad}; accepted: {', '.join(CATEGORIES)}")
        lab = np.array(labels)
        if np.any(lab == neutral_label):
            neutral = x[lab == neutral_label].mean(0)
        else:
            logger.info("no neutral embeddings: the mean of all embeddings is the neutral centre")
            neutral = x.mean(0)
        directions, lengths, centres = {}, {}, {neutral_label: neutral}
        for k in CATEGORIES:
            if k == NEUTRAL or not np.any(lab == k):
                continue
            xk = x[lab == k]
            centre = xk.mean(0)
            offset = centre - neutral
            norm = float(np.linalg.norm(offset))
            if norm < 1e-12:
                raise ValueError(f"category {k!r} has the same centre as neutral: no direction")
            d = offset / norm
            proj = (xk - neutral) @ d
            length = float(np.median(proj))
            if length <= 0:
                length = norm
            directions[k], lengths[k], centres[k] = d, length, centre
        if not directions:
            raise ValueError("fit needs embeddings of at least one non-neutral category")
        model = cls(neutral, directions, lengths, centres, meta=meta)
        model.axes = model._fit_axes()
        return model

    @classmethod
    def fit_unsupervised(
        cls,
        embeddings: np.ndarray | torch.Tensor,
        n_clusters: int,
        *,
        neutral_embeddings: np.ndarray | None = None,
        labelled: tuple[np.ndarray, list[str]] | None = None,
        seed: int = 0,
        n_init: int = 10,
        meta: dict | None = None,
    ) -> DirectionVectorModel:
        """Fit on unlabelled embeddings by clustering (k-means++, best of ``n_init`` restarts).

        The neutral centre is the mean of ``neutral_embeddings`` when given, else the centroid of
        the cluster nearest the overall mean. Clusters are named by majority vote of a few
        labelled embeddings (``labelled=(X, labels)``) when given; otherwise by the order of the
        vocabulary's non-neutral categories, which only makes sense after the user renames them
        (``rename``) - the metadata records ``"cluster_names": "arbitrary"`` in that case.
        """
        from scipy.cluster.vq import kmeans2

        x = _as_2d(embeddings, "embeddings")
        if not 2 <= n_clusters <= x.shape[0]:
            raise ValueError(f"n_clusters must be in [2, {x.shape[0]}], got {n_clusters}")
        if n_clusters - 1 > len(CATEGORIES) - 1 and neutral_embeddings is None:
            raise ValueError(f"at most {len(CATEGORIES)} clusters (one per category)")
        rng = np.random.default_rng(seed)
        best = None
        for _ in range(n_init):  # k-means++ restarts; keep the lowest within-cluster error
            cand_c, cand_a = kmeans2(x, n_clusters, minit="++", seed=rng)
            err = float(((x - cand_c[cand_a]) ** 2).sum())
            if len(np.unique(cand_a)) == n_clusters and (best is None or err < best[0]):
                best = (err, cand_c, cand_a)
        if best is None:
            raise ValueError("k-means left a cluster empty on every restart; use fewer clusters")
        _, centroids, assign = best
        meta = dict(meta or {})
        # The neutral cluster (when no neutral embeddings are given) is the one nearest the mean.
        neutral_cluster = None
        if neutral_embeddings is None:
            neutral_cluster = int(np.argmin(np.linalg.norm(centroids - x.mean(0), axis=1)))
        clusters = [c for c in range(n_clusters) if c != neutral_cluster]
        names: dict[int, str] = {}
        if labelled is not None:
            lx = _as_2d(labelled[0], "labelled embeddings")
            near = np.argmin(((lx[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
            for c in clusters:
                votes = [lab for lab, n in zip(labelled[1], near) if n == c and lab != NEUTRAL]
                if votes:
                    names[c] = max(set(votes), key=votes.count)
            meta["cluster_names"] = "majority vote of labelled embeddings"
        free = [k for k in CATEGORIES if k != NEUTRAL and k not in names.values()]
        for c in clusters:
            if c not in names:
                names[c] = free.pop(0)
                meta["cluster_names"] = "arbitrary"
        labels = []
        for a in assign:
            labels.append(NEUTRAL if a == neutral_cluster else names[int(a)])
        if neutral_cluster is None:
            x = np.concatenate([x, _as_2d(neutral_embeddings, "neutral_embeddings")])
            labels += [NEUTRAL] * len(neutral_embeddings)
        meta["fit"] = "unsupervised k-means"
        return cls.fit(x, labels, meta=meta)

    def _fit_axes(self) -> np.ndarray | None:
        """Least-squares VAD -> embedding map from the fitted centres (needs >= 3 categories)."""
        names = [k for k in self.directions if k in self.centres]
        if len(names) < 3:
            return None
        anchors = anchor_matrix()
        n_vad = anchors[CATEGORIES.index(NEUTRAL)]
        a = np.stack([anchors[CATEGORIES.index(k)] - n_vad for k in names])  # (M, 3)
        y = np.stack([self.centres[k] - self.neutral for k in names])  # (M, D)
        axes, *_ = np.linalg.lstsq(a, y, rcond=None)  # (3, D)
        return axes

    def rename(self, mapping: dict[str, str]) -> DirectionVectorModel:
        """Rename categories (after an unsupervised fit); returns a new model."""

        def ren(d: dict) -> dict:
            return {mapping.get(k, k): v for k, v in d.items()}

        new = DirectionVectorModel(
            self.neutral,
            ren(self.directions),
            ren(self.lengths),
            ren(self.centres),
            meta=dict(self.meta, cluster_names="renamed"),
        )
        new.axes = new._fit_axes()
        return new

    # -- steering and reading -------------------------------------------------------------------
    @property
    def categories(self) -> list[str]:
        """The categories this model has a direction for, in vocabulary order."""
        return [k for k in CATEGORIES if k in self.directions]

    def offset_matrix(self) -> np.ndarray:
        """(K, D) offset of full intensity per vocabulary category; missing ones via the VAD axes."""
        anchors = anchor_matrix()
        n_vad = anchors[CATEGORIES.index(NEUTRAL)]
        rows = []
        for idx, k in enumerate(CATEGORIES):
            if k in self.directions:
                rows.append(self.lengths[k] * self.directions[k])
            elif k == NEUTRAL:
                rows.append(np.zeros(self.dim))
            elif self.axes is not None:
                rows.append((anchors[idx] - n_vad) @ self.axes)
            else:
                rows.append(np.full(self.dim, np.nan))
        return np.stack(rows)

    def steer_contributions(
        self, neutral: np.ndarray | torch.Tensor, contributions: np.ndarray
    ) -> np.ndarray | torch.Tensor:
        """``neutral + C @ offsets`` for contributions C of shape (K,) or (T, K).

        ``neutral`` is (D,) or (B, D): the embedding to move, ``self.neutral`` for the model's own
        neutral centre. Returns a torch tensor when ``neutral`` is one (same dtype and device),
        else a numpy array.
        """
        c = np.asarray(contributions, dtype=np.float64)
        offsets = self.offset_matrix()
        used = np.atleast_2d(c).any(0)
        missing = [CATEGORIES[i] for i in np.flatnonzero(used) if np.isnan(offsets[i]).any()]
        if missing:
            raise ValueError(
                f"this medium's direction model has no direction for {', '.join(missing)} and no "
                f"VAD axes to derive one; it knows: {', '.join(self.categories)}"
            )
        return _moved(neutral, c @ np.nan_to_num(offsets))  # delta (D,) or (T, D)

    def steer(self, neutral: np.ndarray | torch.Tensor, spec: EmotionSpec):
        """Move a neutral embedding toward ``spec``: ``neutral + sum_k c_k L_k d_k``.

        ``neutral`` is the embedding to move (``self.neutral``: the model's neutral centre).
        A spec made from an explicit VAD point is steered along the VAD axes when the model has
        them (so the exact point, not its nearest category mixture, is what moves the embedding).
        """
        if spec.vad_point is not None and self.axes is not None:
            n_vad = anchor_matrix()[CATEGORIES.index(NEUTRAL)]
            return _moved(neutral, (np.asarray(spec.vad_point) - n_vad) @ self.axes)
        return self.steer_contributions(neutral, spec.contributions())

    def steer_frames(self, spec: EmotionSpec, times_s: np.ndarray, medium: str) -> np.ndarray:
        """(T, D) embeddings of the model's neutral centre steered to ``spec`` at each frame time
        (seconds): a curve is sampled per frame, any other spec is the same on every frame.
        The one path from a spec to per-frame conditioning for the media timed in seconds."""
        times_s = np.asarray(times_s, dtype=np.float64)
        if spec.curve is not None:
            if spec.curve.unit != "s":
                raise ValueError(f"a {medium} curve is timed in seconds ('sad -> happy over 3 s'), "
                                 f"got {spec.curve.unit!r}")
            return np.asarray(self.steer_contributions(self.neutral, spec.curve.contributions(times_s)))
        return np.repeat(np.asarray(self.steer(self.neutral, spec))[None], len(times_s), axis=0)

    def read(self, embedding: np.ndarray | torch.Tensor) -> EmotionSpec:
        """The spec an embedding expresses: NNLS of (x - neutral) on the scaled directions."""
        from scipy.optimize import nnls

        x = embedding.detach().cpu().numpy() if isinstance(embedding, torch.Tensor) else embedding
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.shape[0] != self.dim:
            raise ValueError(f"embedding has dimension {x.shape[0]}, this model {self.dim}")
        names = self.categories
        basis = np.stack([self.lengths[k] * self.directions[k] for k in names], axis=1)  # (D, M)
        coef, _ = nnls(basis, x - self.neutral)
        return EmotionSpec.from_contributions(dict(zip(names, coef.tolist())))

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory: str | Path, prefix: str = "") -> None:
        """Write ``{prefix}directions.safetensors`` + ``{prefix}directions.json`` into a folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = self.categories
        tensors = {
            "neutral": torch.from_numpy(self.neutral.copy()),
            "directions": torch.from_numpy(np.stack([self.directions[k] for k in names])),
            "lengths": torch.tensor([self.lengths[k] for k in names], dtype=torch.float64),
        }
        centre_names = [k for k in CATEGORIES if k in self.centres]
        if centre_names:
            tensors["centres"] = torch.from_numpy(np.stack([self.centres[k] for k in centre_names]))
        if self.axes is not None:
            tensors["axes"] = torch.from_numpy(self.axes.copy())
        config = {
            "dim": self.dim,
            "categories": names,
            "centre_categories": centre_names,
            "meta": self.meta,
            "format": 1,
        }
        from conditioning.io import atomic_write

        with atomic_write(directory / f"{prefix}{WEIGHTS_NAME}", "wb") as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        with atomic_write(directory / f"{prefix}{CONFIG_NAME}", "w") as tmp:
            Path(tmp).write_text(json.dumps(config, indent=2), "utf-8")

    @classmethod
    def load(cls, directory: str | Path, prefix: str = "") -> DirectionVectorModel:
        directory = Path(directory)
        cfg_path, w_path = (
            directory / f"{prefix}{CONFIG_NAME}",
            directory / f"{prefix}{WEIGHTS_NAME}",
        )
        if not cfg_path.exists() or not w_path.exists():
            raise FileNotFoundError(
                f"no direction model in {directory} ({cfg_path.name} + {w_path.name})"
            )
        config = json.loads(cfg_path.read_text("utf-8"))
        t = {k: v.numpy() for k, v in load_file(str(w_path)).items()}
        names = config["categories"]
        centres = {}
        if "centres" in t:
            centres = dict(zip(config["centre_categories"], t["centres"]))
        return cls(
            t["neutral"],
            dict(zip(names, t["directions"])),
            dict(zip(names, t["lengths"].tolist())),
            centres,
            axes=t.get("axes"),
            meta=config.get("meta", {}),
        )


def _moved(neutral: np.ndarray | torch.Tensor, delta: np.ndarray) -> np.ndarray | torch.Tensor:
    """``neutral + delta``, in ``neutral``'s type (a tensor keeps its dtype and device)."""
    if neutral is None:
        raise ValueError("steer needs the embedding to move; pass the model's neutral centre "
                         "(model.neutral) for a neutral start")
    if isinstance(neutral, torch.Tensor):
        return neutral + torch.as_tensor(delta, dtype=neutral.dtype, device=neutral.device)
    return np.asarray(neutral, dtype=np.float64) + delta
