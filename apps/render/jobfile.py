"""Job files for ``affect render``: YAML or JSON Lines, checked whole before any work starts.

The schema (examples in ``configs/render/``)::

    defaults:                 # optional; every job starts from these keys
      seed: 0
      options: {steps: 10}
    jobs:                     # a list; a JSON Lines file has one job object per line
      - id: line1_angry       # optional; defaults to the output path without its suffix
        medium: speech        # speech | music | face
        input: lines/line1.wav            # speech: the recording
        emotion: angry@0.8    # any emotion text `affect emotions` accepts, curves included
        intensity: 0.8        # optional override of the emotion's intensity
        seed: 1
        output: speech/line1_angry.wav    # relative to the output folder (-o)
        options: {steps: 10, guidance: 1.5, vocoder: hifigan}
      - medium: face
        portrait: portrait.png            # face: the photo
        speech: line1_angry   # face: speak what a speech job of this file made (or `audio: file`)
        emotion: angry@0.8
        output: face/line1_angry.mp4
      - medium: music
        emotion: sad -> happy over 8 bars
        output: music/cue1.mid
        options: {bars: 8, wav: true}    # wav: also render music/cue1.wav
      - matrix:               # inputs x emotions x intensities (x seeds): one job per combination
          input: [lines/a.wav, lines/b.wav]
          emotion: [angry, sad]
          intensity: [0.5, 1.0]
        medium: speech
        output: "speech/{input}_{emotion}_{intensity}.wav"   # {input} is the file's stem; {id}, {seed} too

Input paths are resolved against the job file's folder. Each error (unknown key, bad emotion,
missing input, duplicate output or id, a chain to an unknown id or to itself, an output outside
the output folder) is reported as ``FILE:LINE: what was wrong``, all of them before any work.
An input file's contents are read when its job runs: one that cannot be used (not audio, no face
in the photo, too long) fails that job alone, with its one-line error in the manifest.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from apps.jobs import FaceJob, JobError, MusicJob, SpeechJob
from apps.jobs.base import file_digest

COMMON_KEYS = {"id", "medium", "emotion", "intensity", "seed", "output", "options", "matrix"}
INPUT_KEYS = {"speech": {"input"}, "music": {"seed_midi"}, "face": {"portrait", "audio", "speech"}}
OPTIONS = {
    "speech": {"steps", "guidance", "vocoder", "vocoder_precision", "model", "precision"},
    "music": {"bars", "tonic", "fixed", "seed_mode", "steps", "guidance", "model", "wav", "precision"},
    "face": {"face_resolution", "steps", "guidance", "noise_scale", "model", "precision"},
}
MATRIX_KEYS = {"input", "portrait", "audio", "emotion", "intensity", "seed"}


class JobFileError(ValueError):
    """Every error of a job file, one ``FILE:LINE: message`` per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class RenderItem:
    """One job of the file: its id, the line it came from, the job (with paths resolved and the
    output inside the output folder), and the id of the speech job it speaks (faces)."""

    id: str
    line: int
    medium: str
    job: SpeechJob | MusicJob | FaceJob
    speech_id: str | None = None
    inputs: dict[str, Path] = field(default_factory=dict)

    @property
    def outputs(self) -> list[Path]:
        files = [Path(self.job.output)]
        if self.medium == "music" and self.job.wav:
            files.append(Path(self.job.wav))
        return files


def _load(path: Path) -> tuple[list[tuple[dict, int]], dict, list[str]]:
    """(job entries with their line numbers, defaults, errors) from YAML or JSON Lines."""
    text = path.read_text("utf-8")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        entries, errors = [], []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{path.name}:{n}: not JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                errors.append(f"{path.name}:{n}: each line is one job object")
                continue
            entries.append((obj, n))
        return entries, {}, errors
    import yaml

    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.line + 1}" if mark else "?"
        return [], {}, [f"{path.name}:{where}: not YAML ({getattr(exc, 'problem', exc)})"]
    if data is None:
        return [], {}, [f"{path.name}:1: the file holds no jobs"]
    defaults = {}
    node = root
    if isinstance(data, dict):
        unknown = set(data) - {"defaults", "jobs"}
        if unknown:
            return [], {}, [f"{path.name}:1: unknown top-level key(s) {', '.join(sorted(unknown))}; "
                            "accepted: defaults, jobs"]
        defaults = data.get("defaults") or {}
        data = data.get("jobs") or []
        node = next(v for k, v in root.value if k.value == "jobs") if "jobs" in (k.value for k, _ in root.value) \
            else None
    if not isinstance(data, list):
        return [], {}, [f"{path.name}:1: jobs must be a list of job mappings"]
    lines = [n.start_mark.line + 1 for n in node.value] if node is not None else [1] * len(data)
    entries, errors = [], []
    for obj, n in zip(data, lines):
        if isinstance(obj, dict):
            entries.append((obj, n))
        else:
            errors.append(f"{path.name}:{n}: each job is a mapping of keys (medium, emotion, output, ...)")
    return entries, defaults, errors


def _expand(entry: dict, line: int, where: str) -> list[dict]:
    """A matrix entry -> one job per combination, each with a generated id and output."""
    matrix = entry.get("matrix")
    if matrix is None:
        return [entry]
    if not isinstance(matrix, dict) or not matrix:
        raise JobError("matrix must map keys to lists of values")
    bad = set(matrix) - MATRIX_KEYS
    if bad:
        raise JobError(f"matrix key(s) {', '.join(sorted(bad))} not accepted; accepted: {', '.join(sorted(MATRIX_KEYS))}")
    keys = sorted(matrix)
    values = [v if isinstance(v, list) else [v] for v in (matrix[k] for k in keys)]
    template = entry.get("output")
    if not isinstance(template, str) or "{" not in template:
        raise JobError("a matrix needs an output template with fields, e.g. 'speech/{input}_{emotion}_{intensity}.wav'")
    base = entry.get("id") or Path(template.split("{")[0] or "job").stem or "job"
    jobs = []
    for i, combo in enumerate(itertools.product(*values)):
        job = {k: v for k, v in entry.items() if k != "matrix"}
        job.update(dict(zip(keys, combo)))
        fields = {k: (Path(str(v)).stem if k in ("input", "portrait", "audio") else
                      str(v).replace(" ", "").replace("/", "-")) for k, v in zip(keys, combo)}
        fields["id"] = f"{base}_{i}"
        fields.setdefault("seed", job.get("seed", 0))
        try:
            job["output"] = template.format(**fields)
        except (KeyError, IndexError) as exc:
            raise JobError(f"output template field {exc} is not among the matrix's keys "
                           f"({', '.join(keys)}) or id, seed") from None
        job["id"] = entry.get("id", base) + f"_{i}" if "id" in entry else Path(job["output"]).with_suffix("").as_posix()
        jobs.append(job)
    return jobs


def _inside(out_dir: Path, rel: str) -> Path:
    """``out_dir / rel``, refused when it would land outside ``out_dir``."""
    if not isinstance(rel, str) or not rel.strip():
        raise JobError("output must be a path relative to the output folder")
    if Path(rel).is_absolute():
        raise JobError(f"output {rel!r} is absolute; give a path relative to the output folder")
    target = (out_dir / rel).resolve()
    if target != out_dir.resolve() and out_dir.resolve() not in target.parents:
        raise JobError(f"output {rel!r} would land outside the output folder")
    return target


def _resolve(base: Path, value, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise JobError(f"{key} must name a file")
    p = Path(value)
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise JobError(f"{key} {value!r}: no such file (resolved against the job file's folder: {p})")
    return p


def _build(job: dict, base: Path, out_dir: Path) -> RenderItem:
    medium = job.get("medium")
    if medium not in OPTIONS:
        raise JobError(f"medium must be speech, music or face, got {medium!r}")
    unknown = set(job) - COMMON_KEYS - INPUT_KEYS[medium]
    if unknown:
        raise JobError(f"unknown key(s) {', '.join(sorted(unknown))} for a {medium} job; accepted: "
                       f"{', '.join(sorted(COMMON_KEYS - {'matrix'} | INPUT_KEYS[medium]))}")
    options = dict(job.get("options") or {})
    bad = set(options) - OPTIONS[medium]
    if bad:
        raise JobError(f"unknown option(s) {', '.join(sorted(bad))} for a {medium} job; accepted: "
                       f"{', '.join(sorted(OPTIONS[medium]))}")
    if "emotion" not in job:
        raise JobError("emotion is required (e.g. 'angry@0.8')")
    if "output" not in job:
        raise JobError("output is required (a path relative to the output folder)")
    output = _inside(out_dir, job["output"])
    common = {"emotion": job["emotion"], "intensity": job.get("intensity"), "seed": job.get("seed", 0)}
    model = options.get("model")
    if isinstance(model, str) and model and not Path(model).is_absolute() and (base / model).is_dir():
        options["model"] = str(base / model)  # a checkpoint folder beside the job file
    inputs, speech_id = {}, None
    if medium == "speech":
        inputs["input"] = _resolve(base, job.get("input"), "input")
        made = SpeechJob(inputs["input"], output=output, **common, **options)
    elif medium == "music":
        if job.get("seed_midi"):
            inputs["seed_midi"] = _resolve(base, job["seed_midi"], "seed_midi")
        wav = output.with_suffix(".wav") if options.pop("wav", False) else None
        if "fixed" in options and not isinstance(options["fixed"], dict):
            raise JobError("options.fixed maps attribute names to values, e.g. {tempo: 80}")
        made = MusicJob(output=output, wav=wav, seed_midi=inputs.get("seed_midi"), **common, **options)
    else:
        inputs["portrait"] = _resolve(base, job.get("portrait"), "portrait")
        if ("audio" in job) == ("speech" in job):
            raise JobError("a face job takes either audio (a file) or speech (the id of a speech job)")
        audio = None
        if "audio" in job:
            audio = inputs["audio"] = _resolve(base, job["audio"], "audio")
        else:
            speech_id = str(job["speech"])
        made = FaceJob(inputs["portrait"], output=output, audio=audio, **common, **options)
    ident = str(job.get("id") or Path(job["output"]).with_suffix("").as_posix())
    return RenderItem(ident, 0, medium, made, speech_id, inputs)


def load_jobfile(path: str | Path, out_dir: str | Path) -> list[RenderItem]:
    """Every job of the file, validated (inputs, emotions, options, chains, outputs), in an order
    where each face job comes after the speech job it speaks. Raises ``JobFileError`` with every
    error found."""
    path, out_dir = Path(path), Path(out_dir)
    if not path.is_file():
        raise JobFileError([f"{path}: no such job file"])
    if path.suffix.lower() not in (".yaml", ".yml", ".jsonl", ".ndjson"):
        raise JobFileError([f"{path}: a job file is .yaml/.yml or .jsonl"])
    entries, defaults, errors = _load(path)
    if not isinstance(defaults, dict):
        errors.append(f"{path.name}:1: defaults must be a mapping")
        defaults = {}
    items: list[RenderItem] = []
    for entry, line in entries:
        merged = {**defaults, **entry}
        if "options" in defaults and "options" in entry:
            merged["options"] = {**defaults["options"], **entry["options"]}
        try:
            expanded = _expand(merged, line, path.name)
        except JobError as exc:
            errors.append(f"{path.name}:{line}: {exc}")
            continue
        for job in expanded:
            try:
                item = _build(job, path.parent, out_dir)
            except (JobError, TypeError) as exc:
                msg = str(exc) if isinstance(exc, JobError) else f"bad option: {exc}"
                errors.append(f"{path.name}:{line}: {msg}")
                continue
            item.line = line
            items.append(item)
    by_id: dict[str, RenderItem] = {}
    outputs: dict[Path, RenderItem] = {}
    for item in items:
        if item.id in by_id:
            errors.append(f"{path.name}:{item.line}: duplicate id {item.id!r} (first at line {by_id[item.id].line})")
        by_id.setdefault(item.id, item)
        for out in item.outputs:
            if out in outputs:
                errors.append(f"{path.name}:{item.line}: duplicate output {out.relative_to(out_dir.resolve())} "
                              f"(also job {outputs[out].id!r} at line {outputs[out].line})")
            outputs.setdefault(out, item)
    for item in items:
        if item.speech_id is None:
            continue
        src = by_id.get(item.speech_id)
        if src is None:
            errors.append(f"{path.name}:{item.line}: speech {item.speech_id!r} is not the id of a job in this file")
        elif src is item:
            errors.append(f"{path.name}:{item.line}: job {item.id!r} cannot speak itself (a cycle)")
        elif src.medium != "speech":
            errors.append(f"{path.name}:{item.line}: speech {item.speech_id!r} is a {src.medium} job; a face "
                          "speaks what a speech job made")
        else:
            item.job.audio = src.job  # validated with the face job; at run time its output file is used
    for item in items:
        if any(e.startswith(f"{path.name}:{item.line}:") for e in errors):
            continue
        try:
            item.job.validate(check_output=False, read_inputs=False)
        except JobError as exc:
            errors.append(f"{path.name}:{item.line}: {item.id}: {exc}")
    if errors:
        def line_of(e: str) -> int:
            n = e.split(":", 2)[1] if e.count(":") >= 2 else ""
            return int(n) if n.isdigit() else 0

        raise JobFileError(sorted(errors, key=line_of))  # in the file's order (stable within a line)
    # speech before the faces that speak it; otherwise the file's order
    return sorted(items, key=lambda it: (it.speech_id is not None,))


def input_digests(item: RenderItem) -> dict[str, str]:
    return {k: file_digest(p) for k, p in item.inputs.items()}
