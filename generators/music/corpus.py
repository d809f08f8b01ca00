"""The training corpus: music21's bundled corpus read into normalised piano-roll segments.

music21 ships about 15,000 works inside its wheel (Essen folksongs, O'Neill's and Ryan's
collections, Bach chorales, Palestrina, ...). Each work is parsed once, its key found with
music21's key analysis and moved to a tonic of C; its highest part (by mean pitch) is the melody
and the other parts the accompaniment. The grid is four steps a beat; windows of four 4-beat bars,
taken every four bars (at most ``max_segments_per_work`` a work), become training segments with
their attributes (``representation.py``). The result is cached to one ``.npz`` so a second run
reads it in seconds.

Run it with ``affect train music --config configs/train/music.yaml --prepare-only`` or let
training build it on first use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conditioning.io import atomic_write
from generators.music.representation import (
    NUM_PITCHES,
    PITCH_LOW,
    ROLL_ATTRIBUTES,
    SEGMENT_BARS,
    SEGMENT_STEPS,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    Note,
    compute_attributes,
    notes_to_roll,
)

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
DEFAULT_COLLECTIONS = (
    "essenFolksong",
    "oneills1850",
    "ryansMammoth",
    "airdsAirs",
    "bach",
    "palestrina",
    "trecento",
    "monteverdi",
    "josquin",
    "miscFolk",
)


def default_cache_dir() -> Path:
    return Path(os.environ.get("AFFECT_CACHE", Path.home() / ".cache" / "affectstudio"))


@dataclass
class Corpus:
    """Segments of the corpus.

    Attributes:
        rolls: (N, 4, P, T) bool piano-roll segments.
        attributes: (N, len(ROLL_ATTRIBUTES)) float32.
        sources: (N,) collection name of each segment.
        works: (N,) work id (collection/file#index) of each segment.
    """

    rolls: np.ndarray
    attributes: np.ndarray
    sources: np.ndarray
    works: np.ndarray

    def __len__(self) -> int:
        return len(self.rolls)

    def save(self, path: str | Path) -> None:
        packed = np.packbits(self.rolls.reshape(len(self.rolls), -1), axis=1)
        with atomic_write(path, "wb") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    version=CACHE_VERSION,
                    rolls=packed,
                    shape=np.array(self.rolls.shape[1:]),
                    attributes=self.attributes,
                    sources=self.sources,
                    works=self.works,
                    attribute_names=np.array(ROLL_ATTRIBUTES),
                )

    @classmethod
    def load(cls, path: str | Path) -> Corpus:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION or tuple(z["attribute_names"]) != ROLL_ATTRIBUTES:
                raise ValueError(
                    f"corpus cache {path} is from another version; delete it to rebuild"
                )
            shape = tuple(int(x) for x in z["shape"])
            n = len(z["rolls"])
            rolls = np.unpackbits(z["rolls"], axis=1)[:, : int(np.prod(shape))]
            return cls(
                rolls.reshape((n, *shape)).astype(bool), z["attributes"], z["sources"], z["works"]
            )


def _score_notes(score) -> tuple[list[Note], int] | None:
    """A music21 score -> notes on the grid with the tonic moved to C, and its length in steps."""
    parts = list(score.parts) or [score]
    raw = []  # (part index, start, length, midi)
    for i, part in enumerate(parts):
        try:
            flat = part.stripTies().flatten()
        except Exception:  # music21 raises many kinds on odd files
            flat = part.flatten()
        for el in flat.notes:
            ql = float(el.quarterLength)
            if ql <= 0:  # grace notes
                continue
            start = int(round(float(el.offset) * STEPS_PER_BEAT))
            length = max(1, int(round(ql * STEPS_PER_BEAT)))
            for p in el.pitches:
                raw.append((i, start, length, p.midi))
    if len(raw) < 8:
        return None
    key = score.analyze("key")
    shift = -key.tonic.pitchClass
    if shift < -6:
        shift += 12
    # Melody: the part with the highest mean pitch.
    means = {i: np.mean([m for j, _, _, m in raw if j == i]) for i in {r[0] for r in raw}}
    melody = max(means, key=means.get)
    # Keep the melody inside the roll: shift whole octaves when needed.
    mel_pitches = [m + shift for j, _, _, m in raw if j == melody]
    while max(mel_pitches) >= PITCH_LOW + NUM_PITCHES:
        shift -= 12
        mel_pitches = [p - 12 for p in mel_pitches]
    while min(mel_pitches) < PITCH_LOW:
        shift += 12
        mel_pitches = [p + 12 for p in mel_pitches]
    notes = [Note(s, ln, m + shift, 0 if j == melody else 1) for j, s, ln, m in raw]
    total = max(n.start + n.length for n in notes)
    return notes, total


def _segments(
    notes: list[Note], total: int, max_segments: int
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    count = 0
    for start in range(0, max(0, total - SEGMENT_STEPS) + 1, SEGMENT_BARS * STEPS_PER_BAR):
        window = [
            Note(n.start - start, min(n.length, start + SEGMENT_STEPS - n.start), n.pitch, n.track)
            for n in notes
            if start <= n.start < start + SEGMENT_STEPS
        ]
        if sum(1 for n in window if n.track == 0) < 4:
            continue
        attrs = compute_attributes(window, SEGMENT_BARS)
        roll = notes_to_roll(window, SEGMENT_STEPS) > 0.5
        yield roll, np.array([attrs[a] for a in ROLL_ATTRIBUTES], dtype=np.float32)
        count += 1
        if count >= max_segments:
            return


def _process_file(args: tuple[str, str, int]) -> list[tuple[np.ndarray, np.ndarray, str, str]]:
    path, collection, max_segments = args
    import warnings

    from music21 import converter

    warnings.filterwarnings("ignore")
    out = []
    try:
        parsed = converter.parse(path)
    except Exception as exc:  # unreadable corpus files are skipped, counted in the log
        logger.debug("skip %s: %s", path, exc)
        return out
    scores = list(parsed.scores) if parsed.__class__.__name__ == "Opus" else [parsed]
    for idx, score in enumerate(scores):
        try:
            got = _score_notes(score)
        except Exception as exc:
            logger.debug("skip %s#%d: %s", path, idx, exc)
            continue
        if got is None:
            continue
        for roll, attrs in _segments(*got, max_segments):
            out.append((roll, attrs, collection, f"{collection}/{Path(path).name}#{idx}"))
    return out


def corpus_files(collections: Iterable[str] = DEFAULT_COLLECTIONS) -> list[tuple[str, str]]:
    """(path, collection) of every corpus file in the named collections."""
    from music21 import corpus

    wanted = set(collections)
    out = []
    for p in corpus.getCorePaths():
        parts = Path(p).parts
        if "corpus" in parts:
            coll = parts[parts.index("corpus") + 1]
            if coll in wanted and Path(p).suffix in (".krn", ".abc", ".mxl", ".xml", ".musicxml"):
                out.append((str(p), coll))
    return sorted(out)


def build_corpus(
    cache_path: str | Path | None = None,
    collections: Iterable[str] = DEFAULT_COLLECTIONS,
    max_segments_per_work: int = 12,
    max_files: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Corpus:
    """Read the corpus (or the cache when present) into segments."""
    cache_path = (
        Path(cache_path)
        if cache_path
        else default_cache_dir() / f"music-corpus-v{CACHE_VERSION}.npz"
    )
    if cache_path.exists():
        logger.info("reading the corpus cache %s", cache_path)
        return Corpus.load(cache_path)
    files = corpus_files(collections)
    if max_files is not None:
        files = files[:max_files]
    # Big opus files first, so the workers finish together.
    files.sort(key=lambda f: -os.path.getsize(f[0]))
    rolls, attrs, sources, works = [], [], [], []
    jobs = [(p, c, max_segments_per_work) for p, c in files]
    workers = workers or max(1, (os.cpu_count() or 1))
    from tqdm.auto import tqdm

    with ProcessPoolExecutor(max_workers=workers) as pool:
        for result in tqdm(
            pool.map(_process_file, jobs, chunksize=1),
            total=len(jobs),
            disable=not progress,
            desc="music corpus",
        ):
            for roll, a, coll, work in result:
                rolls.append(roll)
                attrs.append(a)
                sources.append(coll)
                works.append(work)
    if not rolls:
        raise ValueError("the music corpus gave no segments; is music21 installed with its corpus?")
    corpus_ = Corpus(np.stack(rolls), np.stack(attrs), np.array(sources), np.array(works))
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    corpus_.save(cache_path)
    logger.info("cached %d segments from %d files to %s", len(corpus_), len(files), cache_path)
    return corpus_
