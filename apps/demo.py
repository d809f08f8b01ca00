"""``affect demo``: render every medium on the embedded defaults into one folder, as jobs of the
job layer on one shared ``Models`` (each pipeline and recognizer loads once). The emotion space itself is
always written: how the demo's emotion texts parse, their VAD points, and a curve sampled per bar.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from apps.jobs import FaceJob, JobError, JobResult, Models, MusicJob, ReadJob, SpeechJob, run
from apps.jobs.base import validator
from conditioning import CATEGORIES, parse_emotion
from conditioning.io import atomic_write

DEMO_EMOTIONS = [
    "neutral",
    "happy@0.8",
    "sad@0.8",
    "angry@0.7",
    "0.6*happy+0.4*surprised",
    "vad(0.6,-0.4,0.3)",
    "wistful",
    "furious@0.5",
]
DEMO_CURVE = "sad@0.8 -> calm@0.5 -> happy@1.0 over 16 bars"


def _emotion_space(out: Path) -> list[tuple[str, str]]:
    specs = [parse_emotion(t).describe() | {"input": t} for t in DEMO_EMOTIONS]
    curve = parse_emotion(DEMO_CURVE).curve
    bars = curve.frame_times(1.0, duration=curve.end + 1)
    per_bar = curve.contributions(bars)
    data = {
        "categories": list(CATEGORIES),
        "specs": specs,
        "curve": {
            "text": DEMO_CURVE,
            "per_bar": [
                {
                    "bar": float(b),
                    "spec": s.to_string(),
                    "contributions": [round(float(x), 4) for x in c],
                }
                for b, s, c in zip(bars, curve.sample(bars), per_bar)
            ],
        },
    }
    path = out / "emotion_space.json"
    with atomic_write(path, "w") as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2), "utf-8")
    return [(str(path), f"{len(specs)} parsed emotions and a 16-bar curve sampled per bar")]


DEMO_MUSIC = [
    ("music_happy", "happy@0.8"),
    ("music_sad", "sad@0.8"),
    ("music_sad_to_happy", "sad@0.8 -> happy@1.0 over 16 bars"),
]


def _music(out: Path, models: Models) -> list[tuple[str, str]]:
    written = []
    for name, emotion in DEMO_MUSIC:
        mid, wav = out / f"{name}.mid", out / f"{name}.wav"
        piece = run(MusicJob(emotion, mid, bars=16, seed=3, wav=wav), models)
        reading = run(ReadJob([mid]), models).data
        what = (
            f"{emotion}: {piece.data['key']}, {piece.data['instrumentation']}, "
            f"{piece.data['tempo_bpm']:.0f} BPM; recognizer reads {reading['category']} "
            f"(valence {reading['valence']:+.2f}, arousal {reading['arousal']:+.2f})"
        )
        written += [
            (str(mid), what),
            (str(wav), f"{piece.data['duration_s']:.1f} s rendered with the FluidR3 GM soundfont"),
        ]
    return written


DEMO_SPEECH_SOURCE = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"
DEMO_SPEECH = [("speech_angry", "angry@1.0"), ("speech_sad", "sad@1.0"), ("speech_happy", "happy@0.8"),
               ("speech_sad_to_angry", "sad@0.8 -> angry@0.8 over 3 s")]


def _speech(out: Path, models: Models) -> list[tuple[str, str]]:
    from conditioning.audio import load_audio, save_audio

    src = load_audio(DEMO_SPEECH_SOURCE)
    source = out / "speech_source.wav"
    save_audio(source, src.wav, src.sample_rate)
    written = [(str(source), "the real recording converted below (LibriVox, public domain): "
                "'he was not an ill disposed young man'")]
    for name, emotion in DEMO_SPEECH:
        path = out / f"{name}.wav"
        res = run(SpeechJob(DEMO_SPEECH_SOURCE, emotion, output=path, seed=0, check=True), models)
        ch, r = res.data["change"], res.data["reading"]
        alone, against = r["alone"], r["against_source"]
        written.append((str(path), f"{emotion}: F0 {ch['f0_st']:+.1f} st, level {ch['gain_db']:+.1f} dB; "
                        f"recognizer reads {alone} ({r['alone_probabilities'][alone]:.2f}), "
                        f"{against} ({r['against_source_probabilities'][against]:.2f}) against the source"))
    return written


DEMO_FACE = [("face_happy", "happy@1.0", "speech_happy.wav"), ("face_sad", "sad@1.0", "speech_sad.wav")]


def _face(out: Path, models: Models) -> list[tuple[str, str]]:
    """Talking heads of the demo portrait, speaking the demo's converted speech (the real
    recording when the speech part has not run)."""
    from PIL import Image
    from skimage import data

    from conditioning.io import atomic_write

    image = out / "face_portrait.png"
    with atomic_write(image, "wb") as tmp:
        Image.fromarray(data.astronaut()).save(tmp, format="PNG")
    written = [(str(image), "the portrait (NASA, public domain, from scikit-image)")]
    for name, emotion, speech in DEMO_FACE:
        audio = out / speech if (out / speech).is_file() else DEMO_SPEECH_SOURCE
        path = out / f"{name}.mp4"
        res = run(FaceJob(image, emotion, path, audio=str(audio), face_resolution=256, seed=0), models).output
        with models.use("recognizer:face-fer-v1", "face") as recognizer:
            reads = [r.category for r in recognizer.read_frames([res.frame(i) for i in range(0, res.n_frames, 5)])]
        top = max(set(reads), key=reads.count)
        written.append((str(path), f"{emotion}, speaking {Path(audio).name}: {res.n_frames} frames at "
                        f"{res.fps} fps, {res.portrait.size} px; the face recognizer reads {top} on "
                        f"{reads.count(top)}/{len(reads)} sampled frames"))
    return written


#: (name, function(out_dir, models) -> [(path, description)]), in the order the demo runs them.
DEMO_PARTS: list[tuple[str, Callable[[Path, Models], list[tuple[str, str]]]]] = [
    ("emotion space", lambda out, models: _emotion_space(out)),
    ("music", _music),
    ("speech", _speech),
    ("face", _face),
]


def run_demo(output_dir: str | Path, models: Models | None = None) -> list[tuple[str, str]]:
    """Run every part into ``output_dir``, each as jobs on the shared ``models``."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"demo output {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    models = models if models is not None else Models()
    written: list[tuple[str, str]] = []
    for _, part in DEMO_PARTS:
        written += part(out, models)
    return written


@dataclass
class DemoJob:
    """``affect demo``: every medium on the embedded defaults, into one folder."""

    output_dir: str | Path = "affect-demo"
    medium = "demo"

    @validator
    def validate(self) -> None:
        out = Path(self.output_dir)
        if out.exists() and not out.is_dir():
            raise JobError(f"demo output {str(out)!r} exists and is not a folder")

    def run(self, models: Models) -> JobResult:
        written = run_demo(self.output_dir, models)
        lines = [f"affect demo wrote {len(written)} file(s) to {self.output_dir}:"]
        lines += [f"  {path}  ({what})" for path, what in written]
        return JobResult(self, [Path(p) for p, _ in written], lines, [{"file": p, "what": w} for p, w in written])
