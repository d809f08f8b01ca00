"""The generation jobs: ``SpeechJob`` (voice conversion), ``MusicJob`` (a piece: MIDI, and audio on
request) and ``FaceJob`` (a talking head or a still; its speech may come from a ``SpeechJob``).

Each is a dataclass of what a user asks for. ``validate()`` checks all that can be checked before
a model loads and parses the emotion once; ``run(models)`` does the work with the shared
``Models`` and returns a ``JobResult`` with the files, the summary lines and the provenance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from apps.jobs.base import (
    JobError,
    JobResult,
    Models,
    check_common,
    parse_job_emotion,
    provenance,
    provenance_path,
    resolve_precision,
    timed,
    validator,
    writable_output,
    write_provenance,
)
from conditioning import EmotionSpec

SPEECH_INPUTS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")
SPEECH_OUTPUTS = (".wav", ".flac", ".ogg")
IMAGE_INPUTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: the limiter's level reduction (dB, over the speech) from which a speech job mentions it
LIMITER_NOTE_DB = 1.0


def _torch_generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)


def _models_record(models: Models, *keys: tuple) -> list[dict]:
    return [models.info(*k) for k in keys]


# -- speech ---------------------------------------------------------------------------------------
@dataclass
class SpeechJob:
    """Convert a recording to ``emotion`` (same words, same speaker).

    ``input`` is a file (wav, flac, ogg, opus, mp3; any rate; up to the pipeline's limit);
    ``output`` a .wav/.flac/.ogg path, or None to keep the result in memory (a chained face job).
    ``check`` reads the result back (the speech recognizer against the source and alone, and the
    speaker cosine)."""

    input: str | Path
    emotion: str | EmotionSpec
    output: str | Path | None = None
    intensity: float | None = None
    seed: int = 0
    steps: int = 10
    guidance: float = 1.5
    vocoder: str = "hifigan"
    vocoder_precision: str = "auto"
    model: str | None = None
    device: str = "cpu"
    precision: str = "auto"
    check: bool = False
    provenance: bool = False
    medium = "speech"
    _spec: EmotionSpec | None = field(default=None, init=False, repr=False)
    _ready: bool = field(default=False, init=False, repr=False)

    @validator
    def validate(self, check_output: bool = True, read_inputs: bool = True) -> EmotionSpec:
        """Everything that can be checked before a model loads. ``check_output=False`` checks the
        output's name but not its folder (for a caller that makes the folders); ``read_inputs=False``
        skips reading the input files' contents (a job file's quick check: a file that cannot be
        read then fails that job alone, when it runs)."""
        self._spec = parse_job_emotion(self.emotion, self.intensity)  # before any model loads
        if self.output is not None:
            writable_output(self.output, SPEECH_OUTPUTS, "-o", "/".join(SPEECH_OUTPUTS), check_output)
        from generators.speech.pipeline_speech import VOCODERS

        if self.vocoder not in VOCODERS:
            raise JobError(f"vocoder must be one of {', '.join(VOCODERS)}, got {self.vocoder!r}")
        from generators.pipeline_utils import DenoiserCheckpointMixin

        DenoiserCheckpointMixin.check_inputs(self.steps, self.guidance)  # the sampler's own limits
        check_common(self)
        from conditioning.audio import load_audio
        from generators.speech.pipeline_speech import MAX_SECONDS

        if not read_inputs:
            return self._spec
        load_audio(self.input, max_seconds=MAX_SECONDS)  # bad audio fails here, before the model loads
        self._ready = True
        return self._spec

    @property
    def model_key(self) -> tuple:
        """What ``Models.use`` loads for this job: medium, checkpoint, device, precision."""
        return ("speech", self.model, self.device, resolve_precision(self.device, self.precision))

    def pipeline_call(self, spec: EmotionSpec) -> dict:
        """The pipeline's keyword arguments for this job."""
        return dict(audio=self.input, emotion=spec, num_inference_steps=self.steps,
                    guidance_scale=self.guidance, generator=_torch_generator(self.seed),
                    vocoder=self.vocoder, vocoder_precision=self.vocoder_precision)

    def run(self, models: Models) -> JobResult:
        spec = self._spec if self._ready else self.validate()
        timings: dict = {}
        with models.use(*self.model_key) as pipe, timed(timings, "generate_s"):
            out = pipe(**self.pipeline_call(spec))
        return self.complete(models, spec, out, timings)

    def complete(self, models: Models, spec: EmotionSpec, out, timings: dict) -> JobResult:
        """What follows generation: the files, the summary, the read-back, the provenance."""
        key = self.model_key
        files, lines = [], []
        change = out.summary()
        if self.output is not None:
            with timed(timings, "write_s"):
                out.save(self.output)
            files.append(Path(self.output))
            lines.append(
                f"wrote {self.output} ({out.duration:.1f} s, {out.sample_rate} Hz, {spec.to_string()}: "
                f"F0 {change['f0_st']:+.1f} st, level {change['gain_db']:+.1f} dB, "
                f"rate x{2.718281828 ** change['rate']:.2f})")
        if out.limited_db >= LIMITER_NOTE_DB:
            lines.append(f"note: the peak limiter took {out.limited_db:.1f} dB off the converted speech "
                         "to hold its peaks at -1 dBFS (a loud recording has little room to get louder)")
        data = {"file": str(self.output) if self.output else None, "duration_s": out.duration,
                "sample_rate": out.sample_rate, "emotion": spec.to_string(), "change": change,
                "limited_db": out.limited_db}
        if self.check:
            with timed(timings, "read_s"):
                text, reading = self._read_back(models, out, spec)
            lines.append(text)
            data["reading"] = reading
        record = provenance(self, spec, _models_record(models, key), timings, {"input": self.input}, files)
        result = JobResult(self, files, lines, data, record, out)
        if self.provenance and files:
            files.append(write_provenance(result))
        return result

    def _read_back(self, models: Models, out, spec: EmotionSpec) -> tuple[str, dict]:
        """speech-prosody-v1 reads the conversion against the source (the speaker-normalised
        reading) and alone; the speaker embeddings are compared."""
        from conditioning.audio import load_audio
        from conditioning.speaker import speaker_similarity

        src = load_audio(self.input)
        with models.use("recognizer:speech-prosody-v1", "speech") as rec:
            against = rec(out.audio, out.sample_rate, reference=(src.wav, src.sample_rate))
            alone = rec(out.audio, out.sample_rate)
        cosine = speaker_similarity(src.wav, src.sample_rate, out.audio, out.sample_rate)

        def said(reading) -> str:
            text = f"{reading.category} {reading.probabilities[reading.category]:.2f}"
            if spec.curve is None and spec.dominant != reading.category:
                text += f", {spec.dominant} {reading.probabilities[spec.dominant]:.2f}"
            return text

        text = (f"read back by speech-prosody-v1: against the source {said(against)}; the clip alone "
                f"{said(alone)}; speaker cosine to the source {cosine:.2f}")
        return text, {"recognizer": "speech-prosody-v1", "against_source": against.category,
                      "alone": alone.category, "speaker_cosine": round(float(cosine), 4),
                      "against_source_probabilities": dict(against.probabilities),
                      "alone_probabilities": dict(alone.probabilities)}


# -- music ----------------------------------------------------------------------------------------
@dataclass
class MusicJob:
    """Generate a piece for ``emotion`` (a curve may span the bars): ``output`` a .mid file,
    ``wav`` optionally its audio. ``fixed`` pins musical attributes (tempo, major, density, ...);
    ``seed_midi`` gives a melody to continue or re-harmonise (``seed_mode``)."""

    emotion: str | EmotionSpec
    output: str | Path
    bars: int = 16
    intensity: float | None = None
    seed: int = 0
    wav: str | Path | None = None
    tonic: str | int | None = None
    fixed: dict[str, float] = field(default_factory=dict)
    seed_midi: str | Path | None = None
    seed_mode: str = "continue"
    steps: int = 12
    guidance: float = 2.0
    model: str | None = None
    device: str = "cpu"
    precision: str = "auto"
    provenance: bool = False
    medium = "music"
    _spec: EmotionSpec | None = field(default=None, init=False, repr=False)
    _seed: tuple | None = field(default=None, init=False, repr=False)
    _ready: bool = field(default=False, init=False, repr=False)

    @validator
    def validate(self, check_output: bool = True, read_inputs: bool = True) -> EmotionSpec:
        """As ``SpeechJob.validate``: everything that can be checked before a model loads."""
        from generators.music.mapping import BOUNDS
        from generators.music.pipeline_music import MAX_BARS, MusicPipeline, _parse_tonic
        from generators.music.representation import ATTRIBUTES

        self._spec = parse_job_emotion(self.emotion, self.intensity)  # before any model loads
        if isinstance(self.bars, bool) or not isinstance(self.bars, int) or not 1 <= self.bars <= MAX_BARS:
            raise JobError(f"--bars must be in [1, {MAX_BARS}], got {self.bars}")
        MusicPipeline.check_inputs(self.bars, self.steps, self.guidance, "midi")  # the sampler's limits
        for name, value in self.fixed.items():
            if name not in ATTRIBUTES:
                raise JobError(f"unknown attribute {name!r} to fix; accepted: {', '.join(ATTRIBUTES)}")
            lo, hi = BOUNDS[name]
            if not lo <= float(value) <= hi:
                raise JobError(f"{name} must be in [{lo:g}, {hi:g}], got {value}")
        if self.seed_mode not in ("continue", "reharmonize"):
            raise JobError(f"seed_mode must be 'continue' or 'reharmonize', got {self.seed_mode!r}")
        writable_output(self.output, (".mid", ".midi"), "-o", ".mid", check_output)
        check_common(self)
        if self.wav:
            writable_output(self.wav, (".wav",), "--wav", ".wav", check_output)
        if self.tonic is not None:
            _parse_tonic(self.tonic, None)
        if self.seed_midi and read_inputs:
            from generators.music import load_seed_midi

            self._seed = load_seed_midi(self.seed_midi)
        self._ready = read_inputs or not self.seed_midi
        return self._spec

    @property
    def model_key(self) -> tuple:
        """What ``Models.use`` loads for this job: medium, checkpoint, device, precision."""
        return ("music", self.model, self.device, resolve_precision(self.device, self.precision))

    def pipeline_call(self, spec: EmotionSpec) -> dict:
        """The pipeline's keyword arguments for this job."""
        seed_notes, tonic = None, self.tonic
        if self._seed is not None:
            seed_notes, seed_tonic = self._seed
            tonic = tonic if tonic is not None else seed_tonic
        return dict(emotion=spec, num_bars=self.bars, tonic=tonic, fixed_attributes=dict(self.fixed),
                    seed_notes=seed_notes, seed_mode=self.seed_mode, num_inference_steps=self.steps,
                    guidance_scale=self.guidance, generator=_torch_generator(self.seed),
                    output_type="audio" if self.wav else "midi")

    def run(self, models: Models) -> JobResult:
        spec = self._spec if self._ready else self.validate()
        timings: dict = {}
        with models.use(*self.model_key) as pipe, timed(timings, "generate_s"):
            out = pipe(**self.pipeline_call(spec))
        return self.complete(models, spec, out, timings)

    def complete(self, models: Models, spec: EmotionSpec, out, timings: dict) -> JobResult:
        """What follows generation: the files, the summary, the provenance."""
        key = self.model_key
        with timed(timings, "write_s"):
            out.save_midi(self.output)
        files = [Path(self.output)]
        lines = [f"wrote {self.output} ({out.num_bars} bars, {out.key}, {out.instrumentation}, "
                 f"{out.attributes['tempo'][0]:.0f} BPM at bar 1)"]
        data = {"file": str(self.output), "bars": out.num_bars, "key": out.key,
                "instrumentation": out.instrumentation, "tempo_bpm": float(out.attributes["tempo"][0])}
        if self.wav:
            with timed(timings, "write_s"):
                out.save_wav(self.wav)
            files.append(Path(self.wav))
            seconds = len(out.audio) / out.sample_rate
            lines.append(f"wrote {self.wav} ({seconds:.1f} s, {out.sample_rate} Hz)")
            data |= {"wav": str(self.wav), "duration_s": seconds, "sample_rate": out.sample_rate}
        record = provenance(self, spec, _models_record(models, key), timings,
                            {"seed_midi": self.seed_midi}, files)
        result = JobResult(self, files, lines, data, record, out)
        if self.provenance:
            files.append(write_provenance(result))
        return result


# -- faces ----------------------------------------------------------------------------------------
@dataclass
class FaceJob:
    """Animate ``portrait`` speaking ``audio`` with ``emotion``: an .mp4 (H.264 + AAC), or a .png
    still of the expression when ``audio`` is None. ``audio`` may be a file or a ``SpeechJob``,
    whose converted voice the face then speaks (the speech job's own output, if it names one, is
    written too)."""

    portrait: str | Path
    emotion: str | EmotionSpec
    output: str | Path
    audio: str | Path | SpeechJob | None = None
    intensity: float | None = None
    face_resolution: int = 256
    seed: int = 0
    steps: int = 10
    guidance: float = 1.5
    noise_scale: float = 0.7
    model: str | None = None
    device: str = "cpu"
    precision: str = "auto"
    provenance: bool = False
    medium = "face"
    _spec: EmotionSpec | None = field(default=None, init=False, repr=False)
    _portrait: object = field(default=None, init=False, repr=False)
    _ready: bool = field(default=False, init=False, repr=False)

    @property
    def still(self) -> bool:
        return str(self.output).lower().endswith(".png")

    @validator
    def validate(self, check_output: bool = True, read_inputs: bool = True) -> EmotionSpec:
        """As ``SpeechJob.validate``: everything that can be checked before a model loads."""
        self._spec = spec = parse_job_emotion(self.emotion, self.intensity)  # before any model loads
        if not (self.still or str(self.output).lower().endswith(".mp4")):
            raise JobError(f"-o must name an .mp4 file (a talking head, with --audio) or a .png file "
                           f"(a still of the expression), got {str(self.output)!r}")
        if self.still and spec.curve is not None:
            raise JobError("a .png still holds one expression; give a category, mixture or VAD point "
                           "with an intensity, not a curve")
        if not self.still and self.audio is None:
            raise JobError("--audio is required for an .mp4 talking head (wav, flac, ogg, mp3; up to "
                           "60 s); without audio, -o a .png writes a still of the expression")
        if not 64 <= self.face_resolution <= 1024:
            raise JobError(f"--face-resolution must be in [64, 1024] px, got {self.face_resolution}")
        if not 0.0 < self.noise_scale <= 1.5:
            raise JobError(f"--noise-scale must be in (0, 1.5], got {self.noise_scale}")
        from generators.pipeline_utils import DenoiserCheckpointMixin

        DenoiserCheckpointMixin.check_inputs(self.steps, self.guidance)
        writable_output(self.output, (".mp4", ".png"), "-o", ".mp4 or .png", check_output)
        check_common(self)
        from generators.face.pipeline_face import MAX_SECONDS
        from generators.face.portrait import analyse_portrait

        if isinstance(self.audio, SpeechJob):
            self.audio.validate(check_output, read_inputs)
            if not read_inputs:
                return spec
            from conditioning.audio import load_audio

            if load_audio(self.audio.input).duration > MAX_SECONDS:
                raise JobError(f"the speech job's recording is longer than a talking head takes "
                               f"({MAX_SECONDS:g} s)")
        elif not read_inputs:
            return spec
        elif not self.still:
            from conditioning.audio import load_audio

            load_audio(self.audio, max_seconds=MAX_SECONDS)  # bad audio fails here, before the model loads
        self._portrait = analyse_portrait(self.portrait, self.face_resolution)  # no face: fails here
        self._ready = True
        return spec

    @property
    def model_key(self) -> tuple:
        """What ``Models.use`` loads for this job: medium, checkpoint, device, precision."""
        return ("face", self.model, self.device, resolve_precision(self.device, self.precision))

    @property
    def batchable(self) -> bool:
        """A talking head from an audio file (a still has no denoiser pass; a chained speech job
        runs first)."""
        return not self.still and not isinstance(self.audio, SpeechJob)

    def pipeline_call(self, spec: EmotionSpec, audio_args: tuple | None = None) -> dict:
        """The pipeline's keyword arguments for this job (a talking head)."""
        audio, rate = audio_args if audio_args is not None else (self.audio, None)
        return dict(image=None, audio=audio, sample_rate=rate, emotion=spec, num_inference_steps=self.steps,
                    guidance_scale=self.guidance, generator=_torch_generator(self.seed),
                    noise_scale=self.noise_scale, seed=self.seed, portrait=self._portrait)

    def run(self, models: Models) -> JobResult:
        spec = self._spec if self._ready else self.validate()
        portrait = self._portrait
        timings: dict = {}
        key = self.model_key
        if self.still:
            from PIL import Image

            from conditioning.io import atomic_write

            with models.use(*key) as pipe, timed(timings, "generate_s"):
                frame = pipe.expression_stills(None, [spec], portrait=portrait)[0]
            with timed(timings, "write_s"), atomic_write(self.output, "wb") as tmp:
                Image.fromarray(frame).save(tmp, format="PNG")
            files = [Path(self.output)]
            lines = [f"wrote {self.output} (a still of {spec.to_string()}; {portrait.size}x{portrait.size} "
                     f"px, face {portrait.face_resolution} px)"]
            record = provenance(self, spec, _models_record(models, key), timings,
                                {"portrait": self.portrait}, files)
            result = JobResult(self, files, lines, {"file": str(self.output), "still": True}, record, frame)
            if self.provenance:
                files.append(write_provenance(result))
            return result
        speech = None
        audio_args = None
        if isinstance(self.audio, SpeechJob):
            with timed(timings, "speech_s"):
                speech = self.audio.run(models)
            audio_args = (speech.output.audio, speech.output.sample_rate)
        with models.use(*key) as pipe, timed(timings, "generate_s"):
            out = pipe(**self.pipeline_call(spec, audio_args))
        return self.complete(models, spec, out, timings, speech)

    def complete(self, models: Models, spec: EmotionSpec, out, timings: dict, speech=None) -> JobResult:
        """What follows generation of a talking head: the video, the summary, the provenance."""
        key, portrait = self.model_key, self._portrait
        with timed(timings, "encode_s"):
            out.save(self.output)
        for note in out.notes:
            logging.getLogger("affect").info(note)
        files = [Path(self.output)]
        lines = list(speech.lines) if speech else []
        lines.append(f"wrote {self.output} ({out.n_frames} frames, {out.duration:.2f} s at {out.fps} fps, "
                     f"{portrait.size}x{portrait.size} px, face {portrait.face_resolution} px; "
                     f"{spec.to_string()})")
        record = provenance(self, spec, _models_record(models, key), timings,
                            {"portrait": self.portrait,
                             "audio": None if speech else self.audio}, files)
        if speech:
            record["speech"] = speech.provenance
            files = speech.files + files
        data = {"file": str(self.output), "frames": out.n_frames, "duration_s": out.duration, "fps": out.fps}
        result = JobResult(self, files, lines, data, record, out)
        if self.provenance:
            files.append(write_provenance(result, provenance_path(self.output)))
        return result


# -- several jobs at once -------------------------------------------------------------------------
def _release_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_batch(jobs: list, models: Models | None = None) -> list[JobResult | Exception]:
    """Run several generation jobs, those of one medium, checkpoint, device and precision through
    the denoiser together (``pipe.batch``: their shapes decide what shares a pass); stills and
    faces that speak a chained speech job run alone. Every job is validated first. Returns, in
    order, each job's ``JobResult`` or the exception that stopped it (``JobError`` for bad
    input): one job's failure is its own. A job's ``generate_s`` is its share of its batch's
    time; ``batch_size`` and ``batch_generate_s`` say what it shared."""
    import time

    models = models if models is not None else Models()
    results: list = [None] * len(jobs)
    groups: dict[tuple, list[tuple[int, EmotionSpec]]] = {}
    for i, job in enumerate(jobs):
        try:
            spec = job._spec if job._ready else job.validate()
            if isinstance(job, (SpeechJob, MusicJob)) or (isinstance(job, FaceJob) and job.batchable):
                groups.setdefault(job.model_key, []).append((i, spec))
            else:
                results[i] = job.run(models)
        except Exception as exc:  # this job's alone
            results[i] = exc
    for key, members in groups.items():
        try:
            t = time.perf_counter()
            with models.use(*key) as pipe:
                outs = pipe.batch([jobs[i].pipeline_call(spec) for i, spec in members])
            seconds = time.perf_counter() - t
        except Exception as exc:  # the batch as a whole failed: out of memory, or the model did not load
            if len(members) > 1:  # each job alone, so a batch too big for the device costs time, not jobs
                logging.getLogger("affect").warning(
                    "a batch of %d %s jobs failed (%s: %s); running them one at a time", len(members), key[0],
                    type(exc).__name__, " ".join(str(exc).split())[:200])
                _release_device_memory()
            for i, _ in members:
                try:
                    results[i] = jobs[i].run(models) if len(members) > 1 else exc
                except Exception as alone:
                    results[i] = alone
            continue
        for (i, spec), out in zip(members, outs):
            if isinstance(out, Exception):
                results[i] = out
                continue
            timings = {"generate_s": seconds / len(members), "batch_size": len(members),
                       "batch_generate_s": seconds}
            try:
                results[i] = jobs[i].complete(models, spec, out, timings)
            except Exception as exc:
                results[i] = exc
    return results
