"""Cross-modal agreement, and transfer from a voice to other media (after C-MET's cross-modal
emotion transfer).

**Agreement.** For one spec, every generator makes its output (speech: a real recording converted;
music: a piece); each output is read back by its medium's recognizer, and the reading is put in
the shared coordinates (``reading.as_spec()``: category contributions and a VAD point). The report
gives, per spec, how far each reading is from the spec and from the other readings: the Euclidean
distance of contribution vectors (``EmotionSpace.distance``) and of VAD points.

**Transfer.** A voice clip's emotion is read by the speech recognizer, and that reading (a spec in
the shared space) drives the music generator; the piece is read back and compared with the voice's
reading. The voices are the speech generator's conversions (known targets) and real recordings.

Generators come in as arguments (callables), so evaluators never import a generator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from conditioning import EmotionSpace, EmotionSpec, parse_emotion
from conditioning.audio import load_audio, save_audio
from conditioning.io import atomic_write

SPACE = EmotionSpace()


def _vad_distance(a, b) -> float:
    return float(np.linalg.norm(np.subtract(a.vad, b.vad)))


def _coords(spec) -> dict:
    return {"spec": spec.to_string(), "vad": [round(float(x), 4) for x in spec.vad],
            "dominant": "neutral" if spec.is_neutral else spec.dominant}


def mean_face_reading(readings: list) -> EmotionSpec:
    """One spec for a clip: the frames' category probabilities averaged (shares under 1 % dropped)."""
    from conditioning import CATEGORIES

    mean = {c: float(np.mean([r.probabilities[c] for r in readings])) for c in CATEGORIES}
    return EmotionSpec.from_contributions({k: p for k, p in mean.items() if p >= 0.01},
                                          notes=(f"mean of {len(readings)} frames",))


def evaluate_cross_modal(
    out_dir: str | Path,
    specs: list[str],
    voice: str | Path,
    convert_speech: Callable | None,
    generate_music: Callable | None,
    speech_recognizer=None,
    music_recognizer=None,
    transfer_voices: list[str | Path] | None = None,
    seed: int = 0,
    num_bars: int = 8,
    animate_face: Callable | None = None,
    face_recognizer=None,
    face_every: int = 4,
    parallel: bool = False,
) -> dict:
    """Agreement over ``specs`` and transfer from voices; writes the outputs under ``out_dir``.

    With ``animate_face`` (``(audio, sr, emotion, generator) -> FaceOutput``), each spec also
    makes a talking head that speaks that spec's converted speech (the source voice when there is
    no speech generator), read by ``face_recognizer`` on every ``face_every``-th frame; its
    reading is the frames' mean category probabilities.

    With ``parallel``, the music (the specs' pieces and the transfers) is made in one lane and the
    speech and faces in another, side by side (``evaluators.lanes``)."""
    import threading

    import torch

    from evaluators.lanes import run_lanes, stoppable

    stop = threading.Event()  # a failure or a Ctrl-C in one lane ends the other at its next call
    convert_speech, generate_music, animate_face = (
        None if g is None else stoppable(g, stop) for g in (convert_speech, generate_music, animate_face))
    out = Path(out_dir)
    (out / "cross").mkdir(parents=True, exist_ok=True)
    src = load_audio(voice)

    def make_music(spec_text: str, name: str):
        piece = generate_music(emotion=spec_text, num_bars=num_bars, output_type="midi",
                               generator=torch.Generator().manual_seed(seed))
        path = out / "cross" / f"{name}.mid"
        with atomic_write(path, "wb") as tmp:
            Path(tmp).write_bytes(piece.midi)
        return music_recognizer(path).as_spec()

    safe_names = {text: text.replace("@", "_").replace("*", "x").replace("+", "_") for text in specs}
    # an arbitrary voice has no neutral reference: the plain reading (the page says so)
    voice_specs = []
    if speech_recognizer is not None and generate_music is not None:
        for v in transfer_voices or []:
            a = load_audio(v)
            voice_specs.append((v, speech_recognizer(a.wav, a.sample_rate).as_spec()))

    def music_lane() -> tuple[dict, list]:
        pieces = {text: make_music(text, f"music_{safe_names[text]}") for text in specs}
        transfers = []
        for k, (v, voice_spec) in enumerate(voice_specs):
            music_spec = make_music(voice_spec.to_string(), f"transfer_{k:02d}")
            transfers.append({
                "voice": str(v), "voice_reading": _coords(voice_spec),
                "music_reading": _coords(music_spec),
                "distance": SPACE.distance(voice_spec, music_spec),
                "vad_distance": _vad_distance(voice_spec, music_spec),
                "dominant_match": voice_spec.dominant == music_spec.dominant,
            })
        return pieces, transfers

    def speech_face_lane() -> dict:
        readings = {}
        for text in specs:
            got, safe = {}, safe_names[text]
            if convert_speech is not None:
                res = convert_speech(src.wav, src.sample_rate, emotion=text,
                                     generator=torch.Generator().manual_seed(seed))
                save_audio(out / "cross" / f"speech_{safe}.wav", res.audio, res.sample_rate)
                # a conversion is read against its source (the figure of record), where the reader can
                if getattr(speech_recognizer, "supports_reference", False):
                    read = speech_recognizer(res.audio, res.sample_rate, reference=(src.wav, src.sample_rate))
                else:
                    read = speech_recognizer(res.audio, res.sample_rate)
                got["speech"] = read.as_spec()
            if animate_face is not None:
                wav, sr = (res.audio, res.sample_rate) if convert_speech is not None else (src.wav, src.sample_rate)
                video = animate_face(wav, sr, emotion=text, generator=torch.Generator().manual_seed(seed))
                video.save(out / "cross" / f"face_{safe}.mp4")
                got["face"] = mean_face_reading(face_recognizer.read_frames(video.iter_frames(), every=face_every))
            readings[text] = got
        return readings

    lanes = {"speech and faces": speech_face_lane}
    if generate_music is not None:
        lanes["music"] = music_lane
    done, _ = run_lanes(lanes, parallel, stop)
    pieces, transfers = done.get("music", ({}, []))
    rows = []
    for text in specs:
        spec = parse_emotion(text)
        readings = dict(done["speech and faces"][text])
        if text in pieces:
            readings["music"] = pieces[text]
        media = sorted(readings)
        pair = {f"{a}-{b}": {"distance": SPACE.distance(readings[a], readings[b]),
                             "vad_distance": _vad_distance(readings[a], readings[b])}
                for i, a in enumerate(media) for b in media[i + 1 :]}
        rows.append({
            "spec": _coords(spec),
            "readings": {m: _coords(r) for m, r in readings.items()},
            "to_spec": {m: {"distance": SPACE.distance(spec, r),
                            "vad_distance": _vad_distance(spec, r),
                            "dominant_match": (("neutral" if r.is_neutral else r.dominant)
                                               == ("neutral" if spec.is_neutral else spec.dominant))}
                        for m, r in readings.items()},
            "between": pair,
        })

    def mean(key, sub):
        vals = [r[key][m][sub] for r in rows for m in r[key]]
        return float(np.mean(vals)) if vals else float("nan")

    summary = {
        "mean_vad_distance_to_spec": mean("to_spec", "vad_distance"),
        "dominant_match_rate": float(np.mean([v["dominant_match"] for r in rows for v in r["to_spec"].values()]))
        if rows else float("nan"),
        "mean_vad_distance_between_media": mean("between", "vad_distance"),
        "transfer_mean_vad_distance": float(np.mean([t["vad_distance"] for t in transfers])) if transfers else None,
        "transfer_dominant_match_rate": float(np.mean([t["dominant_match"] for t in transfers])) if transfers else None,
    }
    return {"specs": specs, "voice": str(voice), "rows": rows, "transfers": transfers, "summary": summary}
