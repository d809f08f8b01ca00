"""The parts every job shares: the result, the provenance record, and ``Models``, which loads each
pipeline and recognizer once and lends it to one job at a time."""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from apps.common import JobError, check_device, quiet_diffusers
from conditioning import EmotionSpec, parse_emotion
from conditioning.io import atomic_write, check_writable

__all__ = ["PRECISIONS", "JobError", "JobResult", "Models", "package_version", "parse_job_emotion",
           "resolve_precision", "validator",
           "writable_output", "write_provenance"]


def validator(validate: Callable) -> Callable:
    """Decorate a job's ``validate``: whatever a check raises about the input (ValueError, a file
    that is missing or unreadable) reaches the caller as one ``JobError`` line."""
    import functools

    @functools.wraps(validate)
    def wrapped(job, *args, **kwargs):
        try:
            with IMPORT_LOCK:
                return validate(job, *args, **kwargs)
        except JobError:
            raise
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            if getattr(exc, "filename", None):
                raise JobError(f"{exc.strerror}: {exc.filename}") from None
            raise JobError(str(exc)) from None
        except ValueError as exc:
            raise JobError(str(exc)) from None

    return wrapped


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("affectstudio")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


def parse_job_emotion(emotion: str | EmotionSpec, intensity: float | None = None) -> EmotionSpec:
    """The job's emotion, parsed once (text, or a spec passed through), with an intensity override."""
    try:
        return parse_emotion(emotion, intensity)
    except ValueError as exc:
        raise JobError(str(exc)) from None


def writable_output(path: str | Path, suffixes: tuple[str, ...], flag: str, what: str,
                    check_folder: bool = True) -> Path:
    """``path`` ends with one of ``suffixes`` and (with ``check_folder``) its folder can be written,
    or a one-line error. A caller that makes the folders itself (the renderer) checks names only."""
    if not str(path).lower().endswith(suffixes):
        raise JobError(f"{flag} must name a {what} file, got {str(path)!r}")
    return check_writable(path) if check_folder else Path(path)


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (hex, first 16 characters: enough to tell versions apart)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def folder_digest(paths: list[Path]) -> str:
    """One sha256 over the files (relative names and bytes) of checkpoint folders or files: taken
    without loading anything (the renderer's job keys)."""
    h = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in files:
            if "__pycache__" in p.parts:
                continue
            h.update(str(p.relative_to(root.parent)).encode())
            h.update(file_digest(p).encode())
    return h.hexdigest()[:16]


def _feed(h, value) -> None:
    """Feed a value's content (arrays by their bytes, containers item by item) to a hash."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu", torch.float32).numpy()
    if isinstance(value, np.ndarray):
        h.update(str(value.shape).encode())
        h.update(np.ascontiguousarray(value, dtype=np.float64 if value.dtype.kind == "f" else None).tobytes())
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            h.update(str(k).encode())
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)):
        for v in value:
            _feed(h, v)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        _feed(h, {k: v for k, v in vars(value).items() if not k.startswith("_")})
    else:
        h.update(repr(value).encode())


def weights_digest(pipe) -> str:
    """sha256 of what a pipeline computes with: every network's weights (as float32 values, so a
    checkpoint stored in half precision and its float32 copy hash alike only if the values are
    equal), the scheduler's config and the emotion mapping."""
    import torch

    h = hashlib.sha256()
    for name, component in sorted(pipe.components.items()):
        h.update(name.encode())
        if isinstance(component, torch.nn.Module):
            _feed(h, dict(component.state_dict()))
        elif hasattr(component, "config"):
            _feed(h, {k: v for k, v in dict(component.config).items() if not k.startswith("_")})
    if getattr(pipe, "vocoder_name", None):  # speech: the neural vocoder it loads on first use
        from generators.speech.vocoder import PACKAGED, packaged_checkpoint

        name = pipe.vocoder_name
        h.update(name.encode())
        if name in PACKAGED:
            h.update(file_digest(packaged_checkpoint(name)).encode())
        # the distilled fast vocoder, when the package ships one
        from generators.speech.pipeline_speech import FAST_VOCODER_DIR

        fast = FAST_VOCODER_DIR / "diffusion_pytorch_model.safetensors"
        if fast.is_file():
            h.update(file_digest(fast).encode())
    for attr in ("direction_model", "attribute_space"):
        if getattr(pipe, attr, None) is not None:
            h.update(attr.encode())
            _feed(h, getattr(pipe, attr))
    return h.hexdigest()[:16]


@dataclass
class JobResult:
    """What a job made: ``files`` (written atomically), ``lines`` (the human summary the CLI
    prints), ``data`` (the same as JSON-able values), ``provenance`` (how it was made) and
    ``output`` (the pipeline's own output object, for a caller that wants the arrays)."""

    job: Any
    files: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    data: Any = None
    provenance: dict = field(default_factory=dict)
    output: Any = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


#: held while jobs validate and models load, the steps that import the heavy libraries for the
#: first time: diffusers' and transformers' lazy modules are not safe to import from two threads
#: at once (one can see the other's half-imported module); re-entrant, as a face job validates
#: its speech job
IMPORT_LOCK = threading.RLock()


class Models:
    """Each pipeline and recognizer loaded once, on first use, on the device asked, and shared.

    Safe to share between threads: loading is done once per (kind, name, device) under that
    entry's lock, and ``use`` lends an object to one job at a time (a pipeline holds sampler state
    while it runs), so two threads get the same results as one after the other; different models
    run in parallel.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple, dict] = {}

    def _entry(self, key: tuple) -> dict:
        with self._lock:
            return self._entries.setdefault(key, {"lock": threading.RLock(), "obj": None})

    @contextlib.contextmanager
    def use(self, kind: str, name: str | None = None, device: str = "cpu",
            precision: str = "float32") -> Iterator[Any]:
        """Borrow a loaded ``kind`` ("speech", "music", "face" pipelines, their denoisers in
        ``precision``; "recognizer:<name>")."""
        entry = self._entry((kind, name, device, precision))
        with entry["lock"]:
            if entry["obj"] is None:
                t = time.perf_counter()
                with IMPORT_LOCK:
                    entry["obj"], entry["info"] = self._load(kind, name, device, precision)
                entry["info"]["load_s"] = round(time.perf_counter() - t, 3)
            yield entry["obj"]

    def info(self, kind: str, name: str | None = None, device: str = "cpu", precision: str = "float32") -> dict:
        """What provenance records of a loaded model: its name, class, source, weights hash and,
        for a pipeline, its precision and attention backend."""
        entry = self._entry((kind, name, device, precision))
        with entry["lock"]:
            return dict(entry.get("info") or {})

    def loaded(self) -> list[tuple]:
        with self._lock:
            return [k for k, e in self._entries.items() if e["obj"] is not None]

    @staticmethod
    def _load(kind: str, name: str | None, device: str, precision: str = "float32") -> tuple[Any, dict]:
        quiet_diffusers()
        if kind in ("speech", "music", "face"):
            from importlib import import_module

            cls_name, module = {
                "speech": ("EmotionVoiceConversionPipeline", "generators.speech.pipeline_speech"),
                "music": ("MusicPipeline", "generators.music.pipeline_music"),
                "face": ("TalkingHeadPipeline", "generators.face.pipeline_face"),
            }[kind]
            mod = import_module(module)
            import torch

            from generators.pipeline_utils import set_attention_backend

            try:
                pipe = getattr(mod, cls_name).from_pretrained(name)
            except OSError as exc:  # a hub id that is not in the local cache, with the hub offline
                if name is None or Path(name).is_dir():
                    raise
                raise JobError(f"model {name!r}: no such checkpoint folder, and no hub model of that name could "
                               f"be loaded ({type(exc).__name__}); accepted: a checkpoint folder, or a hub id "
                               "(owner/name) that is cached here or, with HF_HUB_OFFLINE=0, can be "
                               "downloaded") from None
            digest = weights_digest(pipe)  # of the weights as stored, whatever they run in
            pipe = pipe.to(device)
            for module in pipe.components.values():  # the denoiser; as a plain torch module: these
                if isinstance(module, torch.nn.Module):  # keep no float32 layers, and float16 runs on a CPU
                    torch.nn.Module.to(module, getattr(torch, precision))
            pipe.set_progress_bar_config(disable=True)
            return pipe, {"name": name or f"{kind}-default", "class": cls_name, "weights_sha256": digest,
                          "device": device, "precision": precision,
                          "attention": set_attention_backend(pipe)}
        if kind.startswith("recognizer:"):
            from evaluators.recognizers import load_recognizer

            rec_name = kind.split(":", 1)[1]
            medium = name or "speech"
            rec = load_recognizer(rec_name, medium)
            return rec, {"name": rec_name, "class": type(rec).__name__}
        raise JobError(f"unknown model kind {kind!r}")


def timed(timings: dict, key: str) -> contextlib.AbstractContextManager:
    """``with timed(t, "generate"): ...`` adds the seconds spent to ``t[key]``."""

    @contextlib.contextmanager
    def _cm():
        t = time.perf_counter()
        try:
            yield
        finally:
            timings[key] = round(timings.get(key, 0.0) + time.perf_counter() - t, 3)

    return _cm()


def job_options(job) -> dict:
    """Every field of a job dataclass as JSON-able values (paths as text, nested jobs as their
    medium and output)."""
    out = {}
    for f in fields(job):
        if f.name.startswith("_"):
            continue
        v = getattr(job, f.name)
        if isinstance(v, EmotionSpec):
            v = v.to_string()
        elif isinstance(v, Path):
            v = str(v)
        elif hasattr(v, "medium") and hasattr(v, "validate"):
            v = {"job": v.medium, "output": str(v.output) if getattr(v, "output", None) else None}
        elif isinstance(v, (list, tuple)):
            v = [str(x) if isinstance(x, Path) else x for x in v]
        out[f.name] = v
    return out


def provenance(job, spec: EmotionSpec | None, models: list[dict], timings: dict,
               inputs: dict[str, str | Path | None], outputs: list[Path]) -> dict:
    """The record of how the outputs were made: enough to make them again."""
    record = {
        "job": job.medium,
        "package": {"name": "affectstudio", "version": package_version()},
        "python": platform.python_version(),
        "options": job_options(job),
        "seed": getattr(job, "seed", None),
        "inputs": {k: {"path": str(p), "sha256": file_digest(p)} for k, p in inputs.items()
                   if p is not None and Path(p).is_file()},
        "models": models,
        "timings_s": timings,
        "outputs": [{"path": str(p), "sha256": file_digest(p)} for p in outputs if Path(p).is_file()],
    }
    if spec is not None:
        record["emotion"] = {"input": job.emotion if isinstance(job.emotion, str) else spec.to_string(),
                             **spec.describe()}
    return record


def provenance_path(output: str | Path) -> Path:
    """Where a job's provenance record goes: beside its output, ``<name>.provenance.json``."""
    output = Path(output)
    return output.with_name(output.stem + ".provenance.json")


def write_provenance(result: JobResult, path: str | Path | None = None) -> Path:
    """Write ``result.provenance`` as JSON (atomically) beside the first output, or to ``path``."""
    target = Path(path) if path else provenance_path(result.files[0])
    with atomic_write(target, "w") as tmp:
        Path(tmp).write_text(json.dumps(result.provenance, indent=2, default=str), "utf-8")
    return target


#: the denoisers' precision: "auto" is float16 on CUDA and float32 elsewhere; "float16" on a CPU
#: runs (slowly: it is there to check what half precision changes), "float32" everywhere
PRECISIONS = ("auto", "float32", "float16")


def resolve_precision(device: str, precision: str = "auto") -> str:
    """The dtype name a job's denoiser runs in on ``device``."""
    if precision == "auto":
        return "float16" if str(device).startswith("cuda") else "float32"
    return precision


def check_common(job) -> None:
    """The checks every generation job makes: a seed that is a whole number, a device that exists."""
    if isinstance(job.seed, bool) or not isinstance(job.seed, int) or job.seed < 0:
        raise JobError(f"seed must be a whole number >= 0, got {job.seed!r}")
    check_device(job.device)
    if getattr(job, "precision", "auto") not in PRECISIONS:
        raise JobError(f"precision must be one of {', '.join(PRECISIONS)}, got {job.precision!r}")
    model = getattr(job, "model", None)
    if model and not Path(model).is_dir() and (Path(model).is_absolute() or str(model).startswith(".")):
        raise JobError(f"model {str(model)!r}: no such checkpoint folder; accepted: a checkpoint folder "
                       "or a hub id (owner/name)")


Runner = Callable[[Any, Models], JobResult]
