"""What each of the studio's endpoints does, on the job layer: ``Studio`` holds the one shared
``Models``, the studio's folder and its limits; each public method is one endpoint (its parameter
names are the API's), builds jobs from the page's values, runs them and returns what the page
shows. Every endpoint works in a fresh folder of its own (two users never share a file), checks
its inputs before any work, reports progress in stages, and turns a ``JobError`` into the page's
error message (one line, no traceback).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import gradio as gr

import apps.studio.emotion as emo
import apps.studio.figures as figures
from apps.jobs import (
    FaceJob,
    JobError,
    JobResult,
    Models,
    MusicJob,
    ReadJob,
    SpeechJob,
    run,
    run_batch,
    write_provenance,
)
from apps.jobs.base import resolve_precision
from apps.studio.emotion import Control

log = logging.getLogger("affect.studio")

LADDER = (0.0, 0.25, 0.5, 0.75, 1.0)
#: imported in the background once the page is served (code, not models: those load on first use),
#: so that a first request does not wait for torch and the pipelines' modules; endpoints wait for it
#: (two threads importing diffusers at once can see it half-initialised)
PREIMPORT = ("torch", "diffusers", "transformers", "generators.pipeline_utils", "generators.speech.pipeline_speech",
             "generators.music.pipeline_music", "generators.face.pipeline_face", "generators.face.portrait",
             "evaluators.recognizers.speech", "evaluators.recognizers.music", "evaluators.recognizers.music_audio",
             "evaluators.recognizers.face", "conditioning.lexicon")
AGAINST_SOURCE = "against the source recording (speaker-normalised; the figure of record for conversion)"
PLAIN = "the clip alone (plain reading)"


@dataclass
class Limits:
    """What the studio accepts; checked before any work."""

    max_upload_mb: float = 50.0
    max_audio_s: float = 60.0
    max_image_side: int = 6000
    max_bars: int = 64

    def describe(self) -> str:
        return (f"uploads up to {self.max_upload_mb:g} MB; recordings up to {self.max_audio_s:g} s; "
                f"images up to {self.max_image_side} px a side; music up to {self.max_bars} bars")


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / f"affect-studio-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def endpoint(fn):
    """One endpoint: bad input (a ``JobError``, or what a check raised about a file) reaches the
    page as ``gr.Error`` with the job layer's one line; anything else is logged with its traceback
    on the server and reported as one line."""

    @functools.wraps(fn)
    def wrapped(self: Studio, *args, **kwargs):
        t0 = time.perf_counter()
        self.imported.wait(timeout=300)
        try:
            return fn(self, *args, **kwargs)
        except gr.Error:
            raise
        except (JobError, ValueError) as exc:
            raise gr.Error(self.user_message(exc), print_exception=False) from None
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            text = f"{exc.strerror}: {exc.filename}" if getattr(exc, "filename", None) else str(exc)
            raise gr.Error(self.user_message(text), print_exception=False) from None
        except Exception as exc:
            log.exception("studio endpoint %s failed", fn.__name__)
            raise gr.Error(self.user_message(f"internal error: {type(exc).__name__}: {exc} "
                                             "(the server's log has the traceback)"),
                           print_exception=False) from None
        finally:
            log.info("%s took %.2f s", fn.__name__, time.perf_counter() - t0)

    return wrapped


def reading_summary(d: dict) -> dict:
    """The fields shown beside a result: recognizer, top category and its probability,
    valence/arousal (None where the recognizer gives none), every probability."""
    out = {"recognizer": d.get("recognizer"), "category": d["category"],
           "probability": d["probabilities"][d["category"]], "valence": d.get("valence"),
           "arousal": d.get("arousal"), "dominance": d.get("dominance"),
           "probabilities": d["probabilities"]}
    for key in ("frames", "frame_shares", "reference"):
        if d.get(key):
            out[key] = d[key] if key != "reference" else [Path(r).name for r in d[key]]
    return out


def reading_line(label: str, r: dict) -> str:
    axes = " · ".join(f"{a} {r[a]:+.2f}" for a in ("valence", "arousal") if r.get(a) is not None)
    ranked = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[1:3]
    then = ", ".join(f"{k} {p:.2f}" for k, p in ranked)
    frames = f" · mean of {r['frames']} frames" if r.get("frames") else ""
    return (f"- **{label}** ({r['recognizer']}): **{r['category']} {r['probability']:.2f}** "
            f"(then {then}){' · ' + axes if axes else ''}{frames}")


class Studio:
    """The endpoints, sharing one ``Models`` (each model loaded once, on first use, lent to one
    job at a time) and one folder (``root``) with a fresh sub-folder per request."""

    def __init__(self, root: str | Path | None = None, models: Models | None = None, device: str = "cpu",
                 limits: Limits | None = None, keep_hours: float = 6.0) -> None:
        self.root = Path(root) if root else default_root()
        self.requests = self.root / "requests"
        self.requests.mkdir(parents=True, exist_ok=True)
        self.models = models if models is not None else Models()
        self.device = device
        self.limits = limits or Limits()
        self.keep_s = keep_hours * 3600
        self._readings: dict[tuple, dict] = {}
        self._lock = threading.Lock()
        self.imported = threading.Event()  # cleared while ``preimport`` runs
        self.imported.set()

    def preimport(self) -> None:
        """Import the pipelines' code (``PREIMPORT``); endpoints wait until it is done. The caller
        clears ``imported`` before it starts this in a thread."""
        import importlib

        from apps.jobs.base import IMPORT_LOCK

        try:
            with IMPORT_LOCK:
                for name in PREIMPORT:
                    try:
                        importlib.import_module(name)
                    except Exception:  # a missing optional part shows itself, as one line, when used
                        log.debug("pre-import of %s failed", name, exc_info=True)
        finally:
            self.imported.set()

    # -- folders, inputs, messages --------------------------------------------------------------
    def request(self) -> Path:
        """A fresh folder for one request (old ones are removed after ``keep_hours``)."""
        self.prune()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.requests / f"{stamp}-{uuid.uuid4().hex[:8]}"
        (folder / "inputs").mkdir(parents=True)
        return folder

    def prune(self) -> None:
        now = time.time()
        for folder in self.requests.iterdir():
            try:
                if folder.is_dir() and now - folder.stat().st_mtime > self.keep_s:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass

    def user_message(self, exc) -> str:
        """One line, with the studio's own folders left out of file names."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        text = re.sub(re.escape(str(self.requests)) + r"/[^/\s'\"]+/(?:inputs/)?", "", text)
        return text.replace(str(self.root) + os.sep, "")

    def stage(self, upload, req: Path, what: str) -> Path:
        """Copy an upload into the request's folder (its name kept), after the size limit."""
        if upload is None or (isinstance(upload, str) and not upload.strip()):
            raise JobError(f"no {what} given: upload one (or click an example)")
        src = Path(upload if isinstance(upload, (str, Path)) else getattr(upload, "path", upload))
        if not src.is_file():
            raise JobError(f"no such file: {src.name!r}")
        size_mb = src.stat().st_size / 1e6
        if size_mb > self.limits.max_upload_mb:
            raise JobError(f"{what} {src.name!r} is {size_mb:.1f} MB; the studio takes up to "
                           f"{self.limits.max_upload_mb:g} MB")
        dst = req / "inputs" / (src.name or what)
        if dst.exists():
            dst = dst.with_name(f"{dst.stem}-{uuid.uuid4().hex[:4]}{dst.suffix}")
        shutil.copyfile(src, dst)
        return dst

    def check_audio(self, path: Path, limit: float | None = None) -> float:
        """The recording decodes and is within the studio's length limit; its duration."""
        from conditioning.audio import load_audio

        return load_audio(path, max_seconds=limit or self.limits.max_audio_s).duration

    def check_image(self, path: Path) -> None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                w, h = im.size
        except (UnidentifiedImageError, OSError):
            return  # the job's own check gives the message
        if max(w, h) > self.limits.max_image_side:
            raise JobError(f"image {path.name!r} is {w}x{h} px; the studio takes up to "
                           f"{self.limits.max_image_side} px a side")

    @staticmethod
    def seed(seed) -> int:
        """-1 (or empty) draws a seed; the one used is shown and can be reused."""
        if seed is None or (isinstance(seed, (int, float)) and int(seed) == -1):
            return random.randrange(2**31 - 1)
        if isinstance(seed, float) and not seed.is_integer():
            raise JobError(f"seed must be a whole number >= 0 (or -1 for a random one), got {seed!r}")
        seed = int(seed)
        if seed < 0:
            raise JobError(f"seed must be a whole number >= 0 (or -1 for a random one), got {seed}")
        return seed

    def warm(self, kind: str, progress, at: float, what: str, name: str | None = None) -> None:
        """Load a model (the 'load' stage) if it is not loaded yet."""
        key = (kind, name, self.device, resolve_precision(self.device))  # what the jobs will use
        if key not in self.models.loaded():
            progress(at, desc=f"loading {what} (once; shared by every request)")
            with self.models.use(*key):
                pass

    # -- the emotion ---------------------------------------------------------------------------
    def resolve(self, control: Control, req: Path | None, curve_ok: bool = True) -> tuple[str, dict | None]:
        """The emotion text a control means, and the reference's reading when it came from one."""
        if control.emotion_mode != "reference":
            text = emo.control_text(control)
            emo.check_text(text)
            if not curve_ok and "->" in text:
                raise JobError("this takes one emotion, not a curve; choose a category, mixture or words")
            return text, None
        control.check()
        if not control.reference:
            raise JobError("no reference given: upload a clip, photo, MIDI file or video to take the "
                           "emotion from")
        ref = self.stage(control.reference, req, "reference") if req else Path(control.reference)
        reading = self.read_one(ref)
        return emo.reading_text(reading["probabilities"], float(control.intensity)), reading

    def read_one(self, path: Path, reference: list | None = None, recognizer: str | None = None) -> dict:
        from apps.jobs.read import read_kind

        if read_kind(path) == "audio":
            self.check_audio(path)
        key = (str(path), path.stat().st_mtime_ns, tuple(map(str, reference or ())), recognizer)
        with self._lock:
            if key in self._readings:
                return self._readings[key]
        d = run(ReadJob([path], reference=reference, recognizer=recognizer), self.models).data
        d = reading_summary(d)
        with self._lock:
            if len(self._readings) > 256:
                self._readings.clear()
            self._readings[key] = d
        return d

    @endpoint
    def parse_emotion(self, emotion_mode, category, category_b, balance, intensity, curve, words,
                      reference) -> str:
        """How the control's choice parses (the live line): as `affect emotions` prints it."""
        control = Control(emotion_mode, category, category_b, balance, intensity, curve, words, reference)
        try:
            if emotion_mode == "reference":
                if not reference:
                    return "*From a reference: upload a clip, photo, MIDI file or video; its reading " \
                           "drives the generation (the intensity slider scales it; 1 = as read).*"
                text, reading = self.resolve(control, None)
                head = (f"read from **{Path(reference).name}** by {reading['recognizer']}: "
                        f"{reading['category']} {reading['probability']:.2f} → `{text}`")
            else:
                text, head = emo.control_text(control), None
            lines = emo.describe_lines(text)
        except (JobError, ValueError) as exc:
            return f"```\n✗ {self.user_message(exc)}\n```"
        body = "\n".join(lines)
        return (head + "\n\n" if head else "") + f"```\n{body}\n```"

    # -- provenance ----------------------------------------------------------------------------
    def record(self, result: JobResult, path: Path, text: str, control: Control, readings: dict,
               extra: dict | None = None) -> Path:
        """The job's provenance with what the studio adds (the control's values, the readings),
        written with ``write_provenance``."""
        c = asdict(control)
        if c.get("reference"):
            c["reference"] = Path(c["reference"]).name
        result.provenance["studio"] = {"emotion_text": text, "control": c, **(extra or {})}
        result.provenance["readings"] = readings
        return write_provenance(result, path)

    def details(self, req: Path, text: str, seed: int | None, result_lines: list[str], readings: dict,
                files: list[Path], reading_of_reference: dict | None = None, **extra) -> dict:
        from conditioning import parse_emotion

        return {"request": req.name, "emotion": {"input": text, **parse_emotion(text).describe()},
                "seed": seed, "lines": [self.user_message(line) for line in result_lines], "readings": readings,
                "reference_reading": reading_of_reference, "files": [p.name for p in files], **extra}

    def summary(self, text: str, seed: int | None, lines: list[str], readings: list[tuple[str, dict]],
                reference: dict | None = None) -> str:
        """The result's summary (Markdown): the emotion and seed, the job's lines (file names only;
        in a code block, so that 'angry@0.8' stays text), what the recognizers read."""
        out = [f"`{text}` · seed **{seed}**" if seed is not None else f"`{text}`"]
        if reference:
            out.append(f"\nemotion taken from the reference: {reference['recognizer']} read "
                       f"{reference['category']} {reference['probability']:.2f}")
        if lines:
            out.append("```\n" + "\n".join(self.user_message(line) for line in lines) + "\n```")
        if readings:
            out.append("\n**What the recognizers read**")
            out += [reading_line(label, r) for label, r in readings]
        return "\n".join(out)

    # -- Voice ---------------------------------------------------------------------------------
    @endpoint
    def voice(self, recording, emotion_mode, category, category_b, balance, intensity, curve, words,
              reference, seed, steps, progress=gr.Progress()):  # noqa: B008 (how Gradio finds it)
        """Convert a recording to the emotion: the converted wav, before/after spectrograms, the
        summary (with the limiter's note), the readings, the files (wav + provenance), the seed."""
        from conditioning.audio import load_audio

        progress(0.0, desc="checking the inputs")
        req = self.request()
        control = Control(emotion_mode, category, category_b, balance, intensity, curve, words, reference)
        src = self.stage(recording, req, "recording")
        self.check_audio(src)
        seed = self.seed(seed)
        text, ref_reading = self.resolve(control, req)
        job = SpeechJob(src, text, output=req / "voice.wav", seed=seed, steps=int(steps), device=self.device)
        job.validate()
        self.warm("speech", progress, 0.1, "the voice model")
        progress(0.3, desc="converting")
        result = job.run(self.models)  # validated above, before any model loaded
        progress(0.75, desc="reading back")
        out = Path(job.output)
        against = self.read_one(out, reference=[src])
        plain = self.read_one(out)
        progress(0.9, desc="encoding the spectrograms")
        s = load_audio(src)
        spectro = figures.spectrograms((s.wav, s.sample_rate),
                                       (result.output.audio, result.output.sample_rate),
                                       req / "spectrograms.png")
        readings = {"against_source": against, "plain": plain}
        prov = self.record(result, req / "voice.provenance.json", text, control, readings)
        files = [out, prov]
        md = self.summary(text, seed, result.lines, [(AGAINST_SOURCE, against), (PLAIN, plain)], ref_reading)
        return (str(out), str(spectro), md,
                self.details(req, text, seed, result.lines, readings, files, ref_reading,
                             limited_db=round(float(result.data["limited_db"]), 2)),
                [str(p) for p in files], seed)

    # -- Music ---------------------------------------------------------------------------------
    @staticmethod
    def fixed_elements(fix_tempo, tempo, key_mode, other) -> dict[str, float]:
        from generators.music.representation import ATTRIBUTES

        fixed: dict[str, float] = {}
        if fix_tempo:
            fixed["tempo"] = float(tempo)
        if key_mode in ("major", "minor"):
            fixed["major"] = 1.0 if key_mode == "major" else 0.0
        for item in re.split(r"[,;\s]+", (other or "").strip()):
            if not item:
                continue
            name, sep, value = item.partition("=")
            if not sep or name not in ATTRIBUTES:
                raise JobError(f"fixed elements take NAME=VALUE with NAME one of {', '.join(ATTRIBUTES)}, "
                               f"got {item!r}")
            try:
                fixed[name] = float(value)
            except ValueError:
                raise JobError(f"fixed element {name}= needs a number, got {value!r}") from None
        return fixed

    @endpoint
    def music(self, emotion_mode, category, category_b, balance, intensity, curve, words, reference,
              bars, seed, tonic, fix_tempo, tempo, key_mode, other_fixed, seed_midi, seed_mode, with_audio,
              progress=gr.Progress()):  # noqa: B008 (how Gradio finds it)
        """A piece for the emotion: audio (when asked), a piano-roll picture, the summary, the
        readings (MIDI and audio), the files (MIDI, wav, provenance), the seed."""
        progress(0.0, desc="checking the inputs")
        req = self.request()
        control = Control(emotion_mode, category, category_b, balance, intensity, curve, words, reference)
        seed = self.seed(seed)
        if bars is None or float(bars) != int(bars) or not 1 <= int(bars) <= self.limits.max_bars:
            raise JobError(f"--bars must be in [1, {self.limits.max_bars}], got {bars}")
        midi_in = self.stage(seed_midi, req, "seed MIDI file") if seed_midi else None
        text, ref_reading = self.resolve(control, req)
        job = MusicJob(text, req / "music.mid", bars=int(bars), seed=seed,
                       wav=req / "music.wav" if with_audio else None,
                       tonic=None if tonic in (None, "", "auto") else tonic,
                       fixed=self.fixed_elements(fix_tempo, tempo, key_mode, other_fixed),
                       seed_midi=midi_in, seed_mode=seed_mode or "continue", device=self.device)
        job.validate()
        self.warm("music", progress, 0.1, "the music model")
        progress(0.3, desc="generating" + (" and rendering the audio" if with_audio else ""))
        result = job.run(self.models)
        progress(0.8, desc="reading back")
        readings = {"midi": self.read_one(Path(job.output))}
        if with_audio:  # the two audio readers, side by side
            readings["audio"] = self.read_one(Path(job.wav), recognizer="music-audio-v1")
            try:
                readings["audio_learned"] = self.read_one(Path(job.wav), recognizer="music-musicnn-v1")
            except ValueError:  # shorter than the 3 s it listens to
                pass
        progress(0.9, desc="drawing the piano roll")
        out = result.output
        roll = figures.piano_roll(out.notes, out.num_bars, out.attributes.get("tempo"), req / "piano_roll.png",
                                  f"{out.key}, {out.instrumentation}")
        prov = self.record(result, req / "music.provenance.json", text, control, readings)
        files = [Path(p) for p in result.files] + [prov]
        labels = [("the MIDI", readings["midi"])] + ([("the audio", readings["audio"])] if with_audio else []) \
            + ([("the audio, learned reader", readings["audio_learned"])] if "audio_learned" in readings else [])
        md = self.summary(text, seed, result.lines, labels, ref_reading)
        return (str(job.wav) if with_audio else None, str(roll), md,
                self.details(req, text, seed, result.lines, readings, files, ref_reading, **{
                    k: result.data[k] for k in ("key", "tempo_bpm", "bars", "instrumentation")}),
                [str(p) for p in files], seed)

    # -- Face ----------------------------------------------------------------------------------
    def face_job_inputs(self, portrait, req: Path) -> Path:
        image = self.stage(portrait, req, "portrait")
        self.check_image(image)
        return image

    @endpoint
    def face(self, portrait, speech, convert_first, emotion_mode, category, category_b, balance, intensity,
             curve, words, reference, seed, progress=gr.Progress()):  # noqa: B008 (how Gradio finds it)
        """A talking head: the portrait speaking the speech (converted to the emotion first when
        asked) with the emotion's expression. The video, summary, readings, files, seed."""
        progress(0.0, desc="checking the inputs")
        req = self.request()
        control = Control(emotion_mode, category, category_b, balance, intensity, curve, words, reference)
        image = self.face_job_inputs(portrait, req)
        audio = self.stage(speech, req, "speech")
        self.check_audio(audio)
        seed = self.seed(seed)
        text, ref_reading = self.resolve(control, req)
        voice = SpeechJob(audio, text, output=req / "voice.wav", seed=seed, device=self.device) \
            if convert_first else None
        job = FaceJob(image, text, req / "face.mp4", audio=voice or audio, seed=seed, device=self.device)
        job.validate()
        if voice:
            self.warm("speech", progress, 0.05, "the voice model")
        self.warm("face", progress, 0.1, "the face model")
        progress(0.25, desc=("converting the voice, " if voice else "") + "animating and encoding")
        result = job.run(self.models)
        progress(0.85, desc="reading back")
        readings = {"video": self.read_one(Path(job.output)),
                    "video_second": self.read_one(Path(job.output), recognizer="face-facex-v1")}
        labels = [("the video's frames", readings["video"]),
                  ("the video's frames, second reader", readings["video_second"])]
        if voice:
            readings["voice_against_source"] = self.read_one(Path(voice.output), reference=[audio])
            labels.append((f"the voice {AGAINST_SOURCE}", readings["voice_against_source"]))
        prov = self.record(result, req / "face.provenance.json", text, control, readings)
        files = [Path(p) for p in result.files] + [prov]
        md = self.summary(text, seed, result.lines, labels, ref_reading)
        return (str(job.output), md, self.details(req, text, seed, result.lines, readings, files, ref_reading),
                [str(p) for p in files], seed)

    @endpoint
    def face_still(self, portrait, emotion_mode, category, category_b, balance, intensity, curve, words,
                   reference, seed, progress=gr.Progress()):  # noqa: B008 (how Gradio finds it)
        """A still of the expression, no speech (FaceJob with a .png output)."""
        progress(0.0, desc="checking the inputs")
        req = self.request()
        control = Control(emotion_mode, category, category_b, balance, intensity, curve, words, reference)
        image = self.face_job_inputs(portrait, req)
        seed = self.seed(seed)
        text, ref_reading = self.resolve(control, req, curve_ok=False)
        job = FaceJob(image, text, req / "still.png", seed=seed, device=self.device)
        job.validate()
        self.warm("face", progress, 0.1, "the face model")
        progress(0.4, desc="rendering the expression")
        result = job.run(self.models)
        progress(0.8, desc="reading back")
        readings = {"still": self.read_one(Path(job.output))}
        prov = self.record(result, req / "still.provenance.json", text, control, readings)
        files = [Path(job.output), prov]
        md = self.summary(text, seed, result.lines, [("the still", readings["still"])], ref_reading)
        return (str(job.output), md, self.details(req, text, seed, result.lines, readings, files, ref_reading),
                [str(p) for p in files], seed)

    # -- Scene ---------------------------------------------------------------------------------
    @endpoint
    def scene(self, recording, portrait, emotion_mode, category, category_b, balance, intensity, curve,
              words, reference, music_level_db, seed, progress=gr.Progress()):  # noqa: B008 (how Gradio finds it)
        """One emotion (or curve) for everything: the converted voice, the face speaking it, and a
        music cue of the same length mixed under the voice at ``music_level_db``, as one mp4."""
        from apps.studio.scene import bars_to_cover, mix_under
        from conditioning import parse_emotion
        from generators.face.video import read_video_frames, write_mp4
        from generators.music.pipeline_music import MAX_BARS
        from generators.music.representation import ATTRIBUTES, STEPS_PER_BAR

        progress(0.0, desc="checking the inputs")
        req = self.request()
        control = Control(emotion_mode, category, category_b, balance, intensity, curve, words, reference)
        audio = self.stage(recording, req, "recording")
        self.check_audio(audio)
        image = self.face_job_inputs(portrait, req)
        seed = self.seed(seed)
        level = float(music_level_db)
        if not -40.0 <= level <= 6.0:
            raise JobError(f"the music level must be in [-40, 6] dB under the voice, got {level:g}")
        text, ref_reading = self.resolve(control, req)
        voice = SpeechJob(audio, text, output=req / "voice.wav", seed=seed, device=self.device)
        face = FaceJob(image, text, req / "face.mp4", audio=voice, seed=seed, device=self.device)
        face.validate()
        MusicJob(text, req / "cue.mid", bars=1, seed=seed).validate()  # the emotion suits music too
        for kind, what, at in (("speech", "the voice model", 0.02), ("face", "the face model", 0.06),
                               ("music", "the music model", 0.1)):
            self.warm(kind, progress, at, what)
        progress(0.15, desc="converting the voice and animating the face")
        face_result = face.run(self.models)
        fo = face_result.output
        progress(0.55, desc="composing the music cue")
        spec = parse_emotion(text)
        with self.models.use("music", None, self.device, resolve_precision(self.device)) as pipe:
            plan = pipe.attribute_plan(spec, MAX_BARS)
        tempos = plan[::STEPS_PER_BAR, ATTRIBUTES.index("tempo")]
        bars = bars_to_cover(tempos, fo.duration, MAX_BARS)
        cue = MusicJob(text, req / "cue.mid", bars=bars, seed=seed, wav=req / "cue.wav", device=self.device)
        music_result = run(cue, self.models)
        progress(0.7, desc="mixing and encoding")
        mix, how = mix_under(fo.audio, fo.sample_rate, music_result.output.audio,
                             music_result.output.sample_rate, level)
        scene = write_mp4(req / "scene.mp4", read_video_frames(face.output), fo.fps, mix, fo.sample_rate)
        progress(0.85, desc="reading back")
        readings = {"voice_against_source": self.read_one(Path(voice.output), reference=[audio]),
                    "voice_plain": self.read_one(Path(voice.output)),
                    "face": self.read_one(Path(scene)),
                    "music": self.read_one(Path(cue.output))}
        lines = face_result.lines + music_result.lines + [
            f"mixed the {bars}-bar cue ({tempos[0]:.0f} BPM at bar 1) under the voice at "
            f"{level:+g} dB, trimmed to {how['seconds']:.2f} s with a {how['fade_out_s']:.2f} s fade-out; "
            f"wrote scene.mp4"]
        record = {"job": "scene", "emotion": {"input": text, **spec.describe()}, "seed": seed,
                  "face": face_result.provenance, "music": music_result.provenance, "mix": how,
                  "outputs": [str(scene)]}
        result = JobResult(None, [Path(scene)], lines, None, record)
        prov = self.record(result, req / "scene.provenance.json", text, control, readings,
                           {"music_bars": bars})
        files = [Path(scene)] + [Path(p) for p in face_result.files] + [Path(p) for p in music_result.files] + [prov]
        labels = [(f"the voice {AGAINST_SOURCE}", readings["voice_against_source"]),
                  ("the voice alone", readings["voice_plain"]), ("the face (scene frames)", readings["face"]),
                  ("the music cue (MIDI)", readings["music"])]
        md = self.summary(text, seed, lines, labels, ref_reading)
        return (str(scene), md, self.details(req, text, seed, lines, readings, files, ref_reading,
                                              music_bars=bars, mix=how),
                [str(p) for p in files], seed)

    # -- Read ----------------------------------------------------------------------------------
    @endpoint
    def read(self, file, reference_recordings, progress=gr.Progress()):  # noqa: B008 (how Gradio finds it)
        """Read any recording, MIDI file, photo or video; with the same speaker's neutral
        recordings, also the speaker-normalised reading. The summary, a valence-arousal plot,
        the readings."""
        from apps.jobs.read import read_kind

        progress(0.0, desc="checking the inputs")
        req = self.request()
        path = self.stage(file, req, "file to read")
        kind = read_kind(path)
        if kind == "image":
            self.check_image(path)
        refs = [self.stage(r, req, "reference recording") for r in (reference_recordings or [])]
        if refs:
            ReadJob([path], reference=refs).validate()  # recordings only, before any model loads
        progress(0.2, desc="reading")
        readings, labels = {}, []
        if refs:
            readings["speaker_normalised"] = self.read_one(path, reference=refs)
            labels.append((f"against {len(refs)} neutral recording{'s' if len(refs) > 1 else ''} of the "
                           "speaker (speaker-normalised)", readings["speaker_normalised"]))
        readings["plain"] = self.read_one(path)
        labels.append(("plain reading" if refs else "reading", readings["plain"]))
        progress(0.8, desc="drawing")
        plot = figures.va_plane([(f"{label.split(' (')[0]}: {r['category']}", r["valence"], r["arousal"])
                                 for label, r in labels], req / "va.png", f"{path.name}: valence-arousal read")
        md = "\n".join([f"**{path.name}** ({kind})"] + [reading_line(label, r) for label, r in labels])
        return md, str(plot), {"request": req.name, "file": path.name, "kind": kind, "readings": readings}

    # -- Intensity ladder ----------------------------------------------------------------------
    @endpoint
    def ladder(self, medium, recording, portrait, emotion_mode, category, category_b, balance, intensity,
               curve, words, reference, seed, bars, progress=gr.Progress()):  # noqa: B008 (how Gradio finds it)
        """One input at intensities 0, 0.25, 0.5, 0.75, 1: five results side by side and a plot of
        what the recognizer reads at each (speech: against its source, the figure of record)."""
        from conditioning import parse_emotion

        progress(0.0, desc="checking the inputs")
        if medium not in ("voice", "music", "face"):
            raise JobError(f"the ladder's medium must be voice, music or face, got {medium!r}")
        req = self.request()
        control = Control(emotion_mode, category, category_b, balance, 1.0 if emotion_mode != "reference"
                          else intensity, curve, words, reference)
        seed = self.seed(seed)
        src = image = None
        if medium == "voice":
            src = self.stage(recording, req, "recording")
            self.check_audio(src)
        elif medium == "face":
            image = self.face_job_inputs(portrait, req)
        text, ref_reading = self.resolve(control, req, curve_ok=False)
        spec = parse_emotion(text)
        if spec.is_neutral:
            raise JobError("a ladder needs an emotion other than neutral (its intensity goes 0 to 1)")
        target = spec.dominant
        texts = [spec.with_intensity(i).to_string() for i in LADDER]
        jobs = []
        for i, t in zip(LADDER, texts):
            name = f"i{int(round(i * 100)):03d}"
            if medium == "voice":
                jobs.append(SpeechJob(src, t, output=req / f"voice_{name}.wav", seed=seed, device=self.device))
            elif medium == "music":
                b = int(bars)
                jobs.append(MusicJob(t, req / f"music_{name}.mid", bars=b, seed=seed,
                                     wav=req / f"music_{name}.wav", device=self.device))
            else:
                jobs.append(FaceJob(image, t, req / f"face_{name}.png", seed=seed, device=self.device))
        for job in jobs:
            job.validate()
        kind = {"voice": "speech", "music": "music", "face": "face"}[medium]
        self.warm(kind, progress, 0.05, f"the {medium} model")
        # the five intensities share the denoiser's passes (one recording, or pieces of one length)
        progress(0.1, desc=f"generating the {len(jobs)} intensities together")
        generated = run_batch(jobs, self.models)
        for res in generated:
            if isinstance(res, Exception):
                raise res
        results, rows, records = [], [], []
        for k, (i, job, res) in enumerate(zip(LADDER, jobs, generated)):
            progress(0.5 + 0.4 * k / len(jobs), desc=f"intensity {i:g}: reading back")
            out = Path(job.output)
            if medium == "voice":
                read = {"against_source": self.read_one(out, reference=[src]), "plain": self.read_one(out)}
            elif medium == "music":
                read = {"midi": self.read_one(out), "audio": self.read_one(Path(job.wav), recognizer="music-audio-v1")}
            else:
                read = {"still": self.read_one(out)}
            results.append(res)
            records.append({"intensity": i, "emotion": texts[k], "provenance": res.provenance, "readings": read})
            first = next(iter(read.values()))
            rows.append({"intensity": i, "emotion": texts[k],
                         **{f"P({target}) {name}": r["probabilities"][target] for name, r in read.items()},
                         "category read": first["category"], "valence read": first["valence"],
                         "arousal read": first["arousal"]})
        progress(0.92, desc="drawing the ladder")
        series = {f"{medium}: {name}": [rec["readings"][name]["probabilities"][target] for rec in records]
                  for name in records[0]["readings"]}
        main = next(iter(records[0]["readings"]))
        va_read = {a: [rec["readings"][main][a] for rec in records] for a in ("valence", "arousal")}
        va_asked = {"valence": [parse_emotion(t).vad[0] for t in texts],
                    "arousal": [parse_emotion(t).vad[1] for t in texts]}
        plot = figures.ladder(list(LADDER), target, series, va_read, va_asked, req / "ladder.png",
                              f"{medium}, {spec.with_intensity(1.0).to_string()}")
        outputs = [Path(p) for r in results for p in r.files]
        record = {"job": "ladder", "medium": medium, "seed": seed, "target": target, "intensities": list(LADDER),
                  "steps": records, "outputs": [str(p) for p in outputs]}
        c = asdict(control)
        c["reference"] = Path(c["reference"]).name if c.get("reference") else None
        record["studio"] = {"emotion_text": text, "control": c, "reference_reading": ref_reading}
        prov = write_provenance(JobResult(None, outputs, [], None, record), req / "ladder.provenance.json")
        files = outputs + [plot, prov]
        shown = [str(job.wav if medium == "music" else job.output) for job in jobs]
        audios = shown if medium in ("voice", "music") else [None] * len(LADDER)
        stills = [(p, f"intensity {i:g}") for p, i in zip(shown, LADDER)] if medium == "face" else []
        table = "\n".join(
            ["| asked | emotion | " + " | ".join(k for k in rows[0] if k.startswith("P(")) + " | read as |",
             "|---|---|" + "---|" * sum(k.startswith("P(") for k in rows[0]) + "---|"]
            + [f"| {r['intensity']:g} | `{r['emotion']}` | "
               + " | ".join(f"{v:.2f}" for k, v in r.items() if k.startswith("P(")) + f" | {r['category read']} |"
               for r in rows])
        note = ("Speech is read against its source recording (the figure of record for conversion); "
                "the plain reading is beside it." if medium == "voice" else "")
        md = f"**ladder of `{spec.with_intensity(1.0).to_string()}`** ({medium}) · seed **{seed}**\n\n{table}\n\n{note}"
        details = {"request": req.name, "medium": medium, "target": target, "seed": seed, "rows": rows,
                   "readings": [rec["readings"] for rec in records], "reference_reading": ref_reading,
                   "files": [p.name for p in files]}
        return (*audios, stills, str(plot), md, details, [str(p) for p in files], seed)
