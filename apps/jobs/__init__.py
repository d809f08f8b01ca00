"""Jobs: the one layer under every interface (the ``affect`` CLI, the studio, the batch renderer).

A job is a typed request (a dataclass): ``SpeechJob``, ``MusicJob``, ``FaceJob`` (its speech may
be a ``SpeechJob``: convert, then animate), ``ReadJob``, and the tasks ``EvalJob``, ``TrainJob``,
``EmotionsJob``, ``ModelsJob`` (and ``apps.bench.BenchJob``, ``apps.demo.DemoJob``,
``apps.render.RenderJob``, which are made of jobs). ``job.validate()`` checks everything
that can be checked before a model loads and raises ``JobError``, whose message is the one line a
user sees; ``run(job, models)`` validates, does the work with the shared ``Models`` and returns a
``JobResult`` (files written atomically, summary lines, JSON-able data, and a provenance record:
the parsed emotion, seed, every option, each model's name and weights hash, the package version,
timings; written beside the outputs with ``provenance=True``). ``run_batch(jobs, models)`` runs
several generation jobs, those of one medium, checkpoint, device and precision through the
denoiser together, and returns each job's result or the exception that stopped it. A generation
job's ``precision`` ("auto": float16 on CUDA, float32 elsewhere) is its denoiser's.

Example:
    >>> from apps.jobs import FaceJob, Models, SpeechJob, run
    >>> models = Models()  # share it: each model loads once
    >>> voice = SpeechJob("line.wav", "angry@0.8", output="line_angry.wav")
    >>> result = run(FaceJob("portrait.png", "angry@0.8", "line_angry.mp4", audio=voice), models)
    >>> result.files, result.provenance["models"]  # doctest: +SKIP
"""

from __future__ import annotations

from apps.jobs.base import JobError, JobResult, Models, write_provenance
from apps.jobs.media import FaceJob, MusicJob, SpeechJob, run_batch
from apps.jobs.read import ReadJob
from apps.jobs.tasks import EmotionsJob, EvalJob, ModelsJob, TrainJob

__all__ = ["EmotionsJob", "EvalJob", "FaceJob", "JobError", "JobResult", "Models",
           "ModelsJob", "MusicJob", "ReadJob", "SpeechJob", "TrainJob", "run", "run_batch", "write_provenance"]


def run(job, models: Models | None = None) -> JobResult:
    """Validate ``job`` (one ``JobError`` line if anything is wrong, before any model loads), then
    run it with ``models`` (a new ``Models`` when None)."""
    job.validate()
    return job.run(models if models is not None else Models())
