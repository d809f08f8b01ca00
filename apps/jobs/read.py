"""``ReadJob``: read the emotion of recordings, MIDI files, photos or videos with the recognizers
(the closed loop's readers, offered on any file)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from apps.jobs.base import JobError, JobResult, Models, provenance, timed, validator
from apps.jobs.media import IMAGE_INPUTS

READ_AUDIO = (".wav", ".flac", ".ogg", ".opus", ".mp3")
READ_MIDI = (".mid", ".midi")
READ_VIDEO = (".mp4", ".mov", ".mkv", ".webm", ".avi")
#: what each kind of file is read by unless a recognizer is named, and what the registry's
#: ``reads`` field must be for a named recognizer to take that kind of file
READ_DEFAULTS = {"audio": ("speech-prosody-v1", "audio"), "midi": ("music-features-v1", "midi"),
                 "image": ("face-fer-v1", "frames"), "video": ("face-fer-v1", "frames")}
READ_KIND_NAMES = {"audio": "a recording", "midi": "a MIDI file", "image": "a photo", "video": "a video"}
#: a video is read on every n-th frame (the face recognizer's reading changes slowly)
READ_VIDEO_EVERY = 5


def read_kind(path: str | Path) -> str:
    """"audio", "midi", "image" or "video" by the file's suffix, or a one-line error."""
    suffix = Path(path).suffix.lower()
    for kind, suffixes in (("audio", READ_AUDIO), ("midi", READ_MIDI), ("image", IMAGE_INPUTS),
                           ("video", READ_VIDEO)):
        if suffix in suffixes:
            return kind
    raise JobError(
        f"cannot read {str(path)!r}: give a recording ({', '.join(READ_AUDIO)}), a MIDI file "
        f"({', '.join(READ_MIDI)}), a photo ({', '.join(IMAGE_INPUTS)}) or a video "
        f"({', '.join(READ_VIDEO)})"
    )


def recognizer_for(name: str | None, kind: str) -> tuple[str, str]:
    """(recognizer name, medium for hub models) for one kind of file: the default, a registered name
    that reads that kind, or hub:<id> for audio (speech) and photos/videos (faces)."""
    from evaluators.recognizers import RECOGNIZERS

    default, reads = READ_DEFAULTS[kind]
    name = name or default
    if name.startswith("hub:"):
        if kind == "midi":
            raise JobError("hub recognizers read speech audio or faces, not MIDI")
        return name, "speech" if kind == "audio" else "face"
    if name not in RECOGNIZERS:
        raise JobError(f"unknown recognizer {name!r}; accepted: {', '.join(RECOGNIZERS)}, "
                       "hub:<model id or folder>")
    if RECOGNIZERS[name].reads != reads:
        fit = [n for n, r in RECOGNIZERS.items() if r.reads == reads]
        raise JobError(f"{name} cannot read {READ_KIND_NAMES[kind]}; for this file: {', '.join(fit)}")
    return name, RECOGNIZERS[name].medium


def reading_dict(path: str, reading, extra: dict | None = None) -> dict:
    probs = {k: round(float(v), 4) for k, v in reading.probabilities.items()}
    out = {"file": path, "category": reading.category, "probabilities": probs}
    for axis in ("valence", "arousal", "dominance"):
        value = getattr(reading, axis, None)
        out[axis] = None if value is None else round(float(value), 4)
    out.update(extra or {})
    return out


def mean_reading(readings: list) -> dict:
    """One reading of a video: the frames' mean probabilities and VAD, and each category's share of
    the frames."""
    keys = list(readings[0].probabilities)
    probs = {k: round(float(np.mean([r.probabilities[k] for r in readings])), 4) for k in keys}
    mean = {axis: (None if getattr(readings[0], axis, None) is None
                   else round(float(np.mean([getattr(r, axis) for r in readings])), 4))
            for axis in ("valence", "arousal", "dominance")}
    shares = Counter(r.category for r in readings)
    return {"probabilities": probs, "category": max(probs, key=probs.get), **mean,
            "frames": len(readings),
            "frame_shares": {k: round(v / len(readings), 3) for k, v in shares.most_common()}}


def describe_reading(d: dict) -> str:
    ranked = sorted(d["probabilities"].items(), key=lambda kv: -kv[1])
    then = ", ".join(f"{k} {v:.2f}" for k, v in ranked[1:3])
    axes = " ".join(f"{a} {d[a]:+.2f}" for a in ("valence", "arousal", "dominance")
                    if d.get(a) is not None)
    n_ref = len(d.get("reference") or [])
    how = f" (against {n_ref} neutral clip{'s' if n_ref > 1 else ''} of the speaker)" if n_ref else ""
    frames = f", mean of {d['frames']} frames" if d.get("frames") else ""
    return (f"{d['file']}: {d['recognizer']}{how} reads {d['category']} "
            f"({ranked[0][1]:.2f}; then {then}{frames}); {axes}")


@dataclass
class ReadJob:
    """Read ``files`` (recordings, MIDI files, photos, videos). ``reference``: the same speaker's
    neutral recordings, for the speaker-normalised reading of recordings; ``recognizer``: a
    registered name or hub:<id> instead of each kind's default."""

    files: list[str | Path]
    reference: list[str | Path] | None = None
    recognizer: str | None = None
    medium = "read"
    _kinds: list[str] = field(default_factory=list, init=False, repr=False)

    @validator
    def validate(self) -> list[str]:
        if not self.files:
            raise JobError("nothing to read: give recordings, MIDI files, photos or videos")
        self._kinds = [read_kind(f) for f in self.files]  # every file's kind before any model loads
        for f in list(self.files) + list(self.reference or []):
            if not Path(f).is_file():
                raise JobError(f"no such file: {str(f)!r}")
        if self.reference:
            if any(k != "audio" for k in self._kinds) or self.recognizer not in (None, "speech-prosody-v1"):
                raise JobError("--reference (the same speaker's neutral speech) is read by "
                               "speech-prosody-v1 on recordings only")
            for r in self.reference:
                if read_kind(r) != "audio":
                    raise JobError(f"--reference {str(r)!r} must be a recording ({', '.join(READ_AUDIO)})")
        for kind in set(self._kinds):
            recognizer_for(self.recognizer, kind)
        return self._kinds

    def run(self, models: Models) -> JobResult:
        kinds = self._kinds or self.validate()
        timings: dict = {}
        results, used = [], {}
        for path, kind in zip(self.files, kinds):
            path = str(path)
            name, medium = recognizer_for(self.recognizer, kind)
            key = (f"recognizer:{name}", medium)
            used[key] = True
            with models.use(*key) as rec, timed(timings, "read_s"):
                if kind == "video":
                    results.append({"file": path, "recognizer": name, **self._read_video(rec, path)})
                    continue
                extra = {"reference": [str(r) for r in self.reference]} if self.reference else {}
                try:
                    reading = rec(path, reference=[str(r) for r in self.reference]) if self.reference \
                        else rec(path)
                except ValueError as exc:
                    if kind == "image" and str(exc).startswith("no face found"):
                        raise JobError(f"no face found in {path!r}; accepted: a photo with a frontal "
                                       "face of at least 50 px") from None
                    raise
            results.append(reading_dict(path, reading, {"recognizer": name, **extra}))
        record = provenance(self, None, [models.info(*k) for k in used], timings,
                            {f"file{i}": f for i, f in enumerate(self.files)}, [])
        data = results if len(results) > 1 else results[0]
        return JobResult(self, [], [describe_reading(d) for d in results], data, record, results)

    @staticmethod
    def _read_video(rec, path: str) -> dict:
        from generators.face.video import read_video_frames

        try:
            frames = list(read_video_frames(path))
        except (OSError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JobError(f"cannot decode the video {path!r} ({first}); accepted: "
                           f"{', '.join(READ_VIDEO)} files that ffmpeg plays") from None
        if not frames:
            raise JobError(f"{path!r} holds no video frames")
        return mean_reading(rec.read_frames(frames, every=READ_VIDEO_EVERY))
