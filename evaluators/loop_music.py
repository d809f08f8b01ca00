"""The closed loop for music: sweep emotions x intensities x seeds through a generator, read every
piece back with the music recognizer, score it, and write ``report.json`` + ``report.html``.

The generator is an argument (any callable with the music pipeline's call signature that returns
an object with ``.midi`` bytes), so evaluators never import a generator. The report writer is
``evaluators.report``, shared by every loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from conditioning import parse_emotion
from conditioning.io import atomic_write
from evaluators.metrics import (
    EmotionAccuracy,
    EmptyBars,
    GrooveConsistency,
    IntensityMonotonicity,
    PitchClassEntropy,
    Polyphony,
    ScaleConsistency,
)
from evaluators.recognizers.music import MusicEmotionRecognizer
from evaluators.report import reader_agreement, write_report

logger = logging.getLogger(__name__)

#: Quality guards for music: (low, high) bounds a piece-level mean must fall in. The pitch-class
#: entropy and scale consistency bounds are the 5th-95th percentiles of the music21 corpus's
#: 4-bar segments (measured for the music issue); 0 empty bars is the music issue's requirement.
MUSIC_THRESHOLDS = {
    "pitch_class_entropy": (1.78, 2.88),
    "scale_consistency": (0.905, 1.0),
    "empty_bars": (0.0, 0.0),
}
#: Thresholds of the music issue for the emotion figures.
MUSIC_TARGETS = {"accuracy_at_1": None, "intensity_spearman": 0.9}


class _MusicScores:
    """The metrics both loops accumulate, and the report they make."""

    def __init__(self, recognizer: MusicEmotionRecognizer, audio_recognizers: list | None = None) -> None:
        self.recognizer = recognizer
        self.audio_recognizers = list(audio_recognizers or [])
        self.extra = {r.name: (EmotionAccuracy(), IntensityMonotonicity()) for r in self.audio_recognizers}
        self.unread: dict[str, int] = {}  # pieces a reader could not read (too short)
        self.accuracy, self.mono = EmotionAccuracy(), IntensityMonotonicity()
        self.quality = {
            "pitch_class_entropy": PitchClassEntropy(),
            "scale_consistency": ScaleConsistency(),
            "groove_consistency": GrooveConsistency(),
            "empty_bars": EmptyBars(),
            "polyphony": Polyphony(),
        }

    def score(self, path: Path, emotion: str, intensity: float, top: bool, audio=None,
              in_sweep: bool = True) -> dict:
        """Read one MIDI file (and its rendered ``audio``, ``(wav, rate)``, for the audio
        recognizers) back and update every metric; returns its row fields. ``in_sweep=False``:
        an extra piece at the top intensity, counted in the accuracy but not in the Spearman
        figures (which take the same seeds at every intensity)."""
        extra = {}
        for rec in self.audio_recognizers if audio is not None else []:
            try:
                r = rec(audio[0], audio[1])
            except ValueError as exc:  # a piece shorter than the reader listens to (musicnn: 3 s)
                extra[f"read:{rec.name}"] = None
                self.unread[rec.name] = self.unread.get(rec.name, 0) + 1
                logger.warning("%s could not read %s: %s", rec.name, path.name, exc)
                continue
            acc, mono = self.extra[rec.name]
            if top:
                acc.update(emotion, r.category)
            if in_sweep:
                mono.update(emotion, intensity, r.probabilities[emotion])
            extra[f"read:{rec.name}"] = r.category
        reading = self.recognizer(path)
        for m in self.quality.values():
            m.update(path)
        if top:
            self.accuracy.update(emotion, reading.category)
        if in_sweep:
            self.mono.update(emotion, intensity, reading.probabilities[emotion])
        return {
            "read": reading.category,
            "valence": reading.valence,
            "arousal": reading.arousal,
            "p_target": reading.probabilities[emotion],
            **extra,
        }

    def report(self, sweep: dict, rows: list[dict], **extra) -> dict:
        q = {name: m.compute()["mean"] for name, m in self.quality.items()}
        return {
            "medium": "music",
            "sweep": sweep,
            "recognizer": {"name": self.recognizer.name, "licence": self.recognizer.licence},
            "recognizers": [
                {"name": self.recognizer.name, "licence": self.recognizer.licence, "reads": "MIDI",
                 "accuracy_at_max_intensity": self.accuracy.compute()["accuracy"],
                 "n": self.accuracy.compute()["n"], "standard_error": self.accuracy.compute()["standard_error"],
                 "intensity_spearman": self.mono.compute()}
            ] + [
                {"name": r.name, "licence": r.licence, "reads": "rendered audio",
                 "accuracy_at_max_intensity": self.extra[r.name][0].compute()["accuracy"],
                 "n": self.extra[r.name][0].compute()["n"],
                 "standard_error": self.extra[r.name][0].compute()["standard_error"],
                 "intensity_spearman": self.extra[r.name][1].compute(), "unread": self.unread.get(r.name, 0)}
                for r in self.audio_recognizers if self.extra[r.name][0].compute()["n"]
            ],
            "agreement_at_top": reader_agreement(
                [r for r in rows if r["intensity"] == max(sweep["intensities"])],
                {self.recognizer.name: "read", **{r.name: f"read:{r.name}" for r in self.audio_recognizers}}),
            "accuracy_at_max_intensity": self.accuracy.compute(),
            "intensity_spearman": {
                e: {"value": v, "pass": bool(v >= MUSIC_TARGETS["intensity_spearman"])}
                for e, v in self.mono.compute().items()
            },
            "quality": q,
            "quality_guards": {
                name: {
                    "value": q[name],
                    "bounds": list(b),
                    "pass": bool(b[0] - 1e-9 <= q[name] <= b[1] + 1e-9),
                }
                for name, b in MUSIC_THRESHOLDS.items()
            },
            **extra,
            "rows": rows,
        }


def evaluate_music(
    generate: Callable,
    out_dir: str | Path,
    emotions: list[str],
    intensities: list[float],
    seeds: list[int],
    num_bars: int = 8,
    recognizer: MusicEmotionRecognizer | None = None,
    audio_recognizers: list | None = None,
    top_seeds: list[int] | None = None,
) -> dict:
    """Run the sweep and write the report; returns the report as a dict. With
    ``audio_recognizers``, every piece is also rendered to audio and read by them.
    ``top_seeds``: the seeds at the top intensity, when more than ``seeds`` (more pieces where
    the accuracy is read; the Spearman figures take ``seeds`` alone)."""
    import torch

    out = Path(out_dir)
    (out / "pieces").mkdir(parents=True, exist_ok=True)
    scores = _MusicScores(recognizer or MusicEmotionRecognizer(), audio_recognizers)
    rows = []
    for emotion in emotions:
        parse_emotion(emotion)  # a clear error before any work
        for intensity in intensities:
            cell = list(seeds) + [x for x in (top_seeds or []) if x not in seeds] \
                if intensity == max(intensities) else seeds
            for seed in cell:
                piece = generate(
                    emotion=f"{emotion}@{intensity:g}",
                    num_bars=num_bars,
                    output_type="audio" if audio_recognizers else "midi",
                    generator=torch.Generator().manual_seed(seed),
                )
                path = out / "pieces" / f"{emotion}_{intensity:g}_{seed}.mid"
                with atomic_write(path, "wb") as tmp:
                    Path(tmp).write_bytes(piece.midi)
                audio = (piece.audio, piece.sample_rate) if audio_recognizers else None
                read = scores.score(path, emotion, intensity, intensity == max(intensities), audio,
                                    in_sweep=seed in seeds)
                rows.append(
                    {
                        "emotion": emotion,
                        "intensity": intensity,
                        "seed": seed,
                        "file": str(path.relative_to(out)),
                        **read,
                    }
                )
    sweep = {
        "emotions": emotions,
        "intensities": intensities,
        "seeds": seeds,
        "top_seeds": sorted(set(seeds) | set(top_seeds or [])),
        "num_bars": num_bars,
        "pieces": len(rows),
    }
    return write_report(out, scores.report(sweep, rows))


def read_file_labels(labels_csv: str | Path) -> list[dict]:
    """Rows of ``file,emotion[,intensity]``; an unknown emotion is a ``ValueError`` naming the row."""
    import csv

    path = Path(labels_csv)
    if not path.is_file():
        raise ValueError(f"labels file {str(path)!r} does not exist; give a CSV with file,emotion")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"file", "emotion"} <= set(reader.fieldnames):
            raise ValueError(
                f"{str(path)!r} needs the columns file,emotion (and optionally intensity)"
            )
        rows = []
        for i, row in enumerate(reader, start=2):
            try:
                spec = parse_emotion(row["emotion"])
            except ValueError as exc:
                raise ValueError(f"{path.name} line {i}: {exc}") from None
            intensity = float(row["intensity"]) if row.get("intensity") else spec.intensity
            rows.append({"file": row["file"], "emotion": spec.dominant, "intensity": intensity})
    if not rows:
        raise ValueError(f"{str(path)!r} lists no files")
    return rows


def evaluate_files(
    folder: str | Path,
    labels_csv: str | Path,
    out_dir: str | Path,
    recognizer: MusicEmotionRecognizer | None = None,
) -> dict:
    """Score MIDI files made anywhere: unreadable files are listed as failed, the rest scored."""
    folder, out = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder")
    labels = read_file_labels(labels_csv)
    out.mkdir(parents=True, exist_ok=True)
    scores = _MusicScores(recognizer or MusicEmotionRecognizer())
    rows, failed = [], []
    top = max(r["intensity"] for r in labels)
    for lab in labels:
        try:
            read = scores.score(
                folder / lab["file"], lab["emotion"], lab["intensity"], lab["intensity"] == top
            )
        except ValueError as exc:
            failed.append({"file": lab["file"], "error": str(exc)})
            continue
        rows.append({**lab, "seed": None, **read})
    if not rows:
        raise ValueError(f"none of the {len(labels)} listed files could be read as MIDI")
    sweep = {
        "emotions": sorted({r["emotion"] for r in rows}),
        "intensities": sorted({r["intensity"] for r in rows}),
        "seeds": [],
        "num_bars": None,
        "pieces": len(rows),
        "source": str(folder),
    }
    return write_report(out, scores.report(sweep, rows, failed=failed))
