"""``affect render``: run a job file's jobs, resumably, in this process, in worker processes, or
on Ray actors; the manifest is written here, by the command that was started.

Each worker holds one ``Models`` (every model loaded once per worker) and runs one batch at a
time: up to ``batch_size`` ready jobs of one medium and checkpoint, which share the denoiser's
passes where their shapes allow (``apps.jobs.run_batch``; a batch of one runs the job alone). With
``workers`` > 1 on a CPU the cores are shared out (``torch.set_num_threads``) so workers do not
fight over them; on ``cuda`` with several GPUs each worker process takes one GPU (``device_slots``),
and on Ray each actor asks Ray for one.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path

from apps.jobs.base import folder_digest, job_options, resolve_precision
from apps.render.jobfile import RenderItem, input_digests, load_jobfile
from apps.render.manifest import Manifest

#: bump when the renderer changes what a job's output depends on
KEY_SCHEMA = 1
MANIFEST = "manifest.sqlite"


# -- keys ----------------------------------------------------------------------------------------
_MODEL_VERSIONS: dict = {}


def model_version(medium: str, model: str | None) -> str:
    """A hash of the checkpoint's files (the embedded default's when ``model`` is None): cheap to
    take before anything loads, and it changes when the weights do."""
    k = (medium, model)
    if k not in _MODEL_VERSIONS:
        if model and not Path(model).is_dir():
            _MODEL_VERSIONS[k] = f"hub:{model}"
        else:
            from importlib import import_module

            default = import_module(f"generators.{medium}.pipeline_{medium}").DEFAULT_DIR
            folder = Path(model) if model else Path(default)
            _MODEL_VERSIONS[k] = folder_digest(sorted(p for p in folder.iterdir() if p.name != "__pycache__"))
    return _MODEL_VERSIONS[k]


def job_key(item: RenderItem, keys: dict[str, str], device: str) -> str:
    """A hash of what determines an item's output: input contents, the parsed emotion, every
    option, the seed, the model's weights, the device, and the key of the speech job it speaks."""
    options = {k: v for k, v in job_options(item.job).items()
               if k not in ("output", "wav", "input", "portrait", "audio", "seed_midi", "provenance", "device",
                            "precision")}
    precision = resolve_precision(device, item.job.precision)
    if precision != "float32":  # float32 keys are those of the renderer before precision was an option
        options["precision"] = precision
    record = {"schema": KEY_SCHEMA, "medium": item.medium, "emotion": item.job._spec.to_string(),
              "options": options, "inputs": input_digests(item), "wav": bool(getattr(item.job, "wav", None)),
              "model": model_version(item.medium, item.job.model), "device": device,
              "speech": keys.get(item.speech_id) if item.speech_id else None}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:24]


# -- what a worker does with one job -------------------------------------------------------------
_WORKER_MODELS = None
#: the device this worker process was given (one GPU of several), or None: the jobs' own
_WORKER_DEVICE = None


def device_slots(device: str, workers: int, gpus: int | None = None) -> list[str]:
    """The device of each worker process: on ``cuda`` (no index) with several GPUs, one GPU each
    in turn (``cuda:0``, ``cuda:1``, ...); otherwise the device asked, for all."""
    if device != "cuda":
        return [device] * workers
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count()
    return [f"cuda:{i % gpus}" for i in range(workers)] if gpus > 1 else [device] * workers


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _init_worker(threads: int | None, slots=None) -> None:
    """A worker process: its own models, its share of the cores, its device (taken from the
    ``slots`` queue, one per worker), Ctrl-C left to the parent."""
    global _WORKER_DEVICE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if slots is not None:
        _WORKER_DEVICE = slots.get()
    if threads:
        import torch

        torch.set_num_threads(threads)


def _payload(item: RenderItem, speech_output: Path | None, device: str, read: bool) -> dict:
    job = item.job
    args = {f.name: getattr(job, f.name) for f in fields(job) if f.init}
    args["device"] = device
    if speech_output is not None:
        args["audio"] = str(speech_output)
    return {"id": item.id, "medium": item.medium, "args": args, "read": read,
            "source": str(item.inputs["input"]) if item.medium == "speech" else None}


def _job(payload: dict):
    from apps.jobs import FaceJob, MusicJob, SpeechJob

    cls = {"speech": SpeechJob, "music": MusicJob, "face": FaceJob}[payload["medium"]]
    args = dict(payload["args"])
    if _WORKER_DEVICE is not None:
        args["device"] = _WORKER_DEVICE
    job = cls(**args)
    for p in job.output, getattr(job, "wav", None):
        if p:
            Path(p).parent.mkdir(parents=True, exist_ok=True)
    return job


def _failure(payload: dict, exc: Exception, seconds: float) -> dict:
    from apps.jobs import JobError

    if isinstance(exc, JobError):
        return {"id": payload["id"], "status": "failed", "error": " ".join(str(exc).split()),
                "retry": False, "seconds": seconds}
    # out of memory, a codec failure, a bug: recorded, the rest go on
    first = " ".join(str(exc).split())[:300]
    return {"id": payload["id"], "status": "failed", "error": f"{type(exc).__name__}: {first}",
            "retry": True, "seconds": seconds}


def _done(payload: dict, result, reading, seconds: float) -> dict:
    return {"id": payload["id"], "status": "done", "files": [str(f) for f in result.files],
            "models": result.provenance.get("models"), "timings": result.provenance.get("timings_s"),
            "emotion": result.provenance.get("emotion", {}).get("spec"), "reading": reading,
            "seconds": seconds, "pid": os.getpid(), "device": result.job.device}


def execute(payload: dict) -> dict:
    """Run one job (in whatever process this is) and, with ``read``, read its output back."""
    global _WORKER_MODELS
    from apps.jobs import Models, run

    if _WORKER_MODELS is None:
        _WORKER_MODELS = Models()
    t = time.perf_counter()
    try:
        result = run(_job(payload), _WORKER_MODELS)
        reading = _read(payload, result, _WORKER_MODELS) if payload["read"] else None
    except Exception as exc:
        return _failure(payload, exc, time.perf_counter() - t)
    return _done(payload, result, reading, time.perf_counter() - t)


def execute_batch(payloads: list[dict]) -> list[dict]:
    """Run several jobs of one medium together (``apps.jobs.run_batch``: they share the
    denoiser's passes where their shapes allow); one payload runs alone (``execute``). Each
    job's seconds are its share of the batch's generation plus its own writing and reading."""
    global _WORKER_MODELS
    from apps.jobs import Models, run_batch

    if len(payloads) == 1:
        return [execute(payloads[0])]
    if _WORKER_MODELS is None:
        _WORKER_MODELS = Models()
    t = time.perf_counter()
    jobs: list = []
    for payload in payloads:
        try:
            jobs.append(_job(payload))
        except Exception as exc:
            jobs.append(exc)
    runnable = [j for j in jobs if not isinstance(j, Exception)]
    results = iter(run_batch(runnable, _WORKER_MODELS))
    share = (time.perf_counter() - t) / len(payloads)
    out = []
    for payload, job in zip(payloads, jobs):
        result = job if isinstance(job, Exception) else next(results)
        if isinstance(result, Exception):
            out.append(_failure(payload, result, share))
            continue
        r0 = time.perf_counter()
        try:
            reading = _read(payload, result, _WORKER_MODELS) if payload["read"] else None
        except Exception as exc:
            out.append(_failure(payload, exc, share + time.perf_counter() - r0))
            continue
        out.append(_done(payload, result, reading, share + time.perf_counter() - r0))
    return out


def _read(payload: dict, result, models) -> dict:
    """The output read by its medium's recognizer. Speech: against its source recording (the
    speaker-normalised reading, the figure of record for conversion), with the plain reading beside."""
    from apps.jobs import ReadJob, run

    spec = result.job._spec
    asked = None if spec.curve is not None else spec.dominant
    out = str(result.job.output)
    if payload["medium"] == "speech":
        ref = run(ReadJob([out], reference=[payload["source"]]), models).data
        plain = run(ReadJob([out]), models).data
        reading = {**_short(ref), "reading": "against the source", "plain": _short(plain)}
        reading["others"] = [{**_short(plain), "reading": "plain (the known limit)"}]
    else:
        reading = {**_short(run(ReadJob([out]), models).data)}
        reading["others"] = []
        if payload["medium"] == "face":  # the second trained face reader
            reading["others"].append(_short(run(ReadJob([out], recognizer="face-facex-v1"), models).data))
        if payload["medium"] == "music" and result.job.wav:  # the audio readers hear the rendering
            for name in ("music-audio-v1", "music-musicnn-v1"):
                try:
                    reading["others"].append(_short(run(ReadJob([str(result.job.wav)], recognizer=name),
                                                        models).data))
                except ValueError as exc:  # a piece shorter than the reader listens to
                    reading["others"].append({"recognizer": name, "category": "-", "error": str(exc)})
            reading["audio"] = reading["others"][0]
    reading["asked"] = asked
    reading["match"] = None if asked is None else reading["category"] == asked
    return reading


def _short(d: dict) -> dict:
    top = sorted(d["probabilities"].items(), key=lambda kv: -kv[1])[:3]
    return {"recognizer": d["recognizer"], "category": d["category"], "top": dict(top),
            "valence": d.get("valence"), "arousal": d.get("arousal")}


# -- executors: this process, worker processes, Ray actors ---------------------------------------
# Each takes a batch (a list of payloads, one or more jobs) per free worker; ``wait`` returns the
# results of whatever batches finished.
class _Inline:
    def __init__(self) -> None:
        self.queue: list[list[dict]] = []

    def submit(self, batch: list[dict]) -> None:
        self.queue.append(batch)

    def busy(self) -> int:
        return len(self.queue)

    def capacity(self) -> int:
        return 1

    def wait(self) -> list[dict]:
        return execute_batch(self.queue.pop(0)) if self.queue else []

    def close(self, cancel: bool = False) -> list[dict]:
        self.queue.clear()
        return []


def _lost(batch: list[dict], exc: Exception) -> list[dict]:
    text = " ".join(str(exc).split())[:200]
    return [{"id": p["id"], "status": "failed", "retry": True, "seconds": 0.0,
             "error": f"worker lost: {type(exc).__name__}: {text}"} for p in batch]


class _Pool:
    def __init__(self, workers: int, threads: int | None, slots: list[str] | None = None) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        queue = None
        if slots is not None:  # each worker takes one device as it starts (one per GPU)
            queue = ctx.Queue()
            for slot in slots:
                queue.put(slot)
        self.n = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                        initargs=(threads, queue))
        self.futures = {}

    def submit(self, batch: list[dict]) -> None:
        self.futures[self.pool.submit(execute_batch, batch)] = batch

    def busy(self) -> int:
        return len(self.futures)

    def capacity(self) -> int:
        return self.n

    def _collect(self, done) -> list[dict]:
        out = []
        for f in done:
            batch = self.futures.pop(f)
            try:
                out += f.result()
            except Exception as exc:  # the worker died (killed, out of memory)
                out += _lost(batch, exc)
        return out

    def wait(self) -> list[dict]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        return self._collect(done)

    def close(self, cancel: bool = False) -> list[dict]:
        """Stop; with ``cancel``, drop what has not started and collect what is running."""
        from concurrent.futures import wait

        for f in list(self.futures):
            if cancel and f.cancel():
                self.futures.pop(f)
        finished = self._collect(wait(list(self.futures))[0]) if self.futures else []
        self.pool.shutdown(wait=True, cancel_futures=True)
        return finished


class _Ray:
    """Ray actors that hold the models (one batch at a time each), one GPU requested per actor on
    CUDA (Ray then shows each actor its own GPU as ``cuda``), lost actors restarted and their
    tasks retried by Ray."""

    def __init__(self, address: str | None, workers: int | None, threads: int | None, device: str) -> None:
        import ray

        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=max(workers or 1, 1) * (threads or 1), **kwargs)
        gpus = 1 if device.startswith("cuda") else 0
        if workers is None:  # one actor per GPU of the cluster on CUDA, else one
            workers = max(1, int(ray.cluster_resources().get("GPU", 0))) if gpus else 1
        actor = ray.remote(num_cpus=threads or 1, num_gpus=gpus, max_restarts=2, max_task_retries=2)(_RayWorker)
        self.actors = [actor.remote(threads) for _ in range(workers)]
        self.idle = list(self.actors)
        self.running: dict = {}

    def submit(self, batch: list[dict]) -> None:
        a = self.idle.pop()
        self.running[a.run.remote(batch)] = (a, batch)

    def busy(self) -> int:
        return len(self.running)

    def capacity(self) -> int:
        return len(self.actors)

    def wait(self) -> list[dict]:
        ready, _ = self.ray.wait(list(self.running), num_returns=1)
        out = []
        for ref in ready:
            a, batch = self.running.pop(ref)
            self.idle.append(a)
            try:
                out += self.ray.get(ref)
            except Exception as exc:  # the actor died beyond Ray's retries
                out += _lost(batch, exc)
        return out

    def close(self, cancel: bool = False) -> list[dict]:
        finished = []
        while self.running and not cancel:
            finished += self.wait()
        for a in self.actors:
            self.ray.kill(a)
        return finished


class _RayWorker:
    def __init__(self, threads: int | None) -> None:
        _init_worker(threads)

    def run(self, batch: list[dict]) -> list[dict]:
        return execute_batch(batch)


# -- the command ---------------------------------------------------------------------------------
@dataclass
class RenderSummary:
    planned: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    reads: dict = field(default_factory=dict)  # emotion -> [matched, read]

    @property
    def exit_status(self) -> int:
        return 130 if self.interrupted else (1 if self.failed else 0)


def clean_partials(out_dir: Path) -> list[Path]:
    """Remove the temporary files an interrupted write left (``.NAME.XXXX.partSUFFIX``)."""
    gone = []
    for p in out_dir.rglob(".*.part*"):
        if p.is_file():
            p.unlink()
            gone.append(p)
    return gone


def check_options(device: str, workers: int | None, batch_size: int, retries: int, precision: str) -> None:
    """The command's own options, each wrong one as one ``JobError`` line."""
    from apps.jobs import JobError
    from apps.jobs.base import PRECISIONS, check_device

    if (workers is not None and workers < 1) or retries < 0 or batch_size < 1:
        raise JobError(f"--workers and --batch-size must be >= 1 and --retries >= 0, got "
                       f"{'auto' if workers is None else workers}, "
                       f"{batch_size} and {retries}")
    if precision not in PRECISIONS:
        raise JobError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    check_device(device)


def render(jobfile: str | Path, out_dir: str | Path, *, workers: int | None = None, device: str = "cpu",
           retries: int = 0, force: bool = False, dry_run: bool = False, quiet: bool = False,
           read: bool = False, ray: str | bool | None = None, batch_size: int = 1,
           precision: str = "auto", echo=print) -> RenderSummary:
    """Run a job file into ``out_dir``; see the module docstring. ``workers`` None: one per GPU on
    ``cuda``, else one. ``precision`` is the denoisers' for every job that does not set its own
    (``apps.jobs.base.PRECISIONS``). Raises ``JobFileError`` (every error of the file) before any
    work."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        from apps.jobs import JobError

        raise JobError(f"-o {str(out)!r} exists and is not a folder")
    check_options(device, workers, batch_size, retries, precision)
    if workers is None and ray is None:  # one worker per GPU on cuda, else one
        workers = max(1, _gpu_count()) if device == "cuda" else 1
    items = load_jobfile(jobfile, out)
    for item in items:
        if item.job.precision == "auto":
            item.job.precision = precision
    keys: dict[str, str] = {}
    for item in items:
        keys[item.id] = job_key(item, keys, device)
    summary = RenderSummary(planned=len(items))
    if dry_run:
        for item in items:
            outs = ", ".join(str(p.relative_to(out.resolve())) for p in item.outputs)
            via = f" speaking {item.speech_id}" if item.speech_id else ""
            echo(f"would run {item.id} ({item.medium}, line {item.line}): {item.job._spec.to_string()} "
                 f"-> {outs}{via}")
        echo(f"{len(items)} job(s) checked; nothing run (--dry-run)")
        return summary
    out.mkdir(parents=True, exist_ok=True)
    gone = clean_partials(out)
    if gone:
        echo(f"removed {len(gone)} partial file(s) an interrupted run left")
    manifest = Manifest(out / MANIFEST)
    by_id = {it.id: it for it in items}
    pending, done_ids = [], set()
    for item in items:
        if not force and manifest.is_done(item.id, keys[item.id]):
            summary.skipped += 1
            done_ids.add(item.id)
        else:
            pending.append(item)
    threads = max(1, (os.cpu_count() or 1) // (workers or 1)) if (workers or 1) > 1 or ray is not None else None
    if ray is not None:
        executor = _Ray(ray if isinstance(ray, str) else None, workers, threads, device)
    elif workers > 1:
        slots = device_slots(device, workers)
        executor = _Pool(workers, threads, None if slots == [device] * workers else slots)
    else:
        executor = _Inline()
    attempts: Counter = Counter()
    failed_ids: set[str] = set()
    bar = None if quiet else _progress(len(pending), summary)
    t0 = time.time()

    def ready(item: RenderItem) -> bool | None:
        """True when it can run, None when it never will (its speech job failed)."""
        if item.speech_id is None:
            return True
        if item.speech_id in failed_ids:
            return None
        return item.speech_id in done_ids

    def settle(result: dict) -> None:
        item = by_id[result["id"]]
        attempts[item.id] += 1
        if result["status"] == "failed" and result.get("retry") and attempts[item.id] <= retries:
            waiting.insert(0, item)
            return
        status = result["status"]
        manifest.record(job_id=item.id, key=keys[item.id], medium=item.medium, line=item.line, status=status,
                        files=[Path(f) for f in result.get("files", [])], seed=item.job.seed,
                        emotion=result.get("emotion") or item.job._spec.to_string(),
                        models=result.get("models"), timings=result.get("timings"),
                        reading=result.get("reading"), error=result.get("error"), attempts=attempts[item.id])
        if status == "done":
            summary.done += 1
            done_ids.add(item.id)
            r = result.get("reading")
            if r and r.get("asked"):
                m = summary.reads.setdefault(r["asked"], [0, 0])
                m[0] += bool(r["match"])
                m[1] += 1
        else:
            summary.failed += 1
            failed_ids.add(item.id)
            summary.failures.append((item.id, item.line, result["error"]))
        line = (f"{status} {item.id} ({item.medium}, {result.get('seconds', 0):.1f} s)"
                + (f": {result['error']}" if status != "done" else ""))
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(_postfix(summary, len(pending), t0))
            if status != "done":
                bar.write(line)
        else:
            echo(line)

    waiting = list(pending)
    running: list[RenderItem] = []
    # Ctrl-C is remembered as well as raised: a KeyboardInterrupt raised inside a callback that C
    # code makes (the synthesizer's sequencer) can be swallowed there, and the run would go on
    asked_to_stop = []

    def on_sigint(signum, frame):
        asked_to_stop.append(signum)
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        while waiting or executor.busy():
            if asked_to_stop:
                raise KeyboardInterrupt
            progressed = False
            for item in list(waiting):
                if executor.busy() >= executor.capacity():
                    break
                if item not in waiting:  # taken into a batch already
                    continue
                state = ready(item)
                if state is None:
                    waiting.remove(item)
                    settle({"id": item.id, "status": "failed", "seconds": 0.0,
                            "error": f"its speech job {item.speech_id!r} failed"})
                    progressed = True
                elif state:
                    free = executor.capacity() - executor.busy()
                    batch = [item] + companions(item, [w for w in waiting if w is not item and ready(w)],
                                                batch_size, free)
                    payloads = []
                    for it in batch:
                        waiting.remove(it)
                        running.append(it)
                        speech_out = Path(by_id[it.speech_id].job.output) if it.speech_id else None
                        payloads.append(_payload(it, speech_out, device, read))
                    executor.submit(payloads)
                    progressed = True
            if executor.busy():
                for result in executor.wait():
                    running.remove(by_id[result["id"]])
                    settle(result)
            elif not progressed and waiting:  # nothing runnable and nothing running: cannot happen
                raise RuntimeError(f"jobs waiting on unfinished work: {[i.id for i in waiting]}")
    except KeyboardInterrupt:
        summary.interrupted = True
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
            previous = None
        for result in executor.close(cancel=True):
            settle(result)
        if bar is not None:
            bar.close()
        echo(f"interrupted: {summary.done} done, {summary.failed} failed, "
             f"{len(pending) - summary.done - summary.failed} not run; run the same command again to "
             "resume (finished jobs are kept)")
        manifest.close()
        clean_partials(out)
        summary.seconds = time.time() - t0
        return summary
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    executor.close()
    if bar is not None:
        bar.close()
    summary.seconds = time.time() - t0
    _report(summary, manifest, out, echo)
    manifest.close()
    return summary


def _shape_hint(item: RenderItem):
    """What makes two jobs of one medium likely to share the denoiser's passes: the same
    recording (speech), the same speech (faces), the same length (music)."""
    if item.medium == "speech":
        return str(item.inputs.get("input"))
    if item.medium == "face":
        return item.speech_id or str(item.inputs.get("audio"))
    return item.job.bars


def companions(item: RenderItem, ready: list[RenderItem], batch_size: int, free: int) -> list[RenderItem]:
    """The ready jobs that join ``item``'s batch: of its medium, checkpoint and precision, those
    of the same shape first, in file order; at most ``batch_size`` - 1, and few enough that the
    ``free`` workers share the ready work of this kind."""
    if batch_size <= 1:
        return []
    key = (item.medium, item.job.model, item.job.precision)
    same = [w for w in ready if (w.medium, w.job.model, w.job.precision) == key]
    same.sort(key=lambda w: _shape_hint(w) != _shape_hint(item))  # stable: file order within
    n = min(batch_size, -(-(len(same) + 1) // max(free, 1)))
    return same[: n - 1]


def _progress(total: int, summary: RenderSummary):
    from tqdm import tqdm

    return tqdm(total=total, unit="job", file=sys.stderr, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")


def _postfix(s: RenderSummary, pending: int, t0: float) -> str:
    minutes = max(time.time() - t0, 1e-6) / 60
    return (f"done {s.done} failed {s.failed} remaining {pending - s.done - s.failed}, "
            f"{(s.done + s.failed) / minutes:.1f} jobs/min")


def _report(summary: RenderSummary, manifest: Manifest, out: Path, echo) -> None:
    rate = (summary.done + summary.failed) / max(summary.seconds / 60, 1e-6)
    echo(f"rendered {summary.done} job(s), {summary.failed} failed, {summary.skipped} already done "
         f"(of {summary.planned}) in {summary.seconds:.1f} s ({rate:.1f} jobs/min); manifest: "
         f"{out / MANIFEST}")
    for ident, line, error in summary.failures:
        echo(f"  failed {ident} (line {line}): {error}")
    rows = manifest.rows()
    reads = defaultdict(lambda: [0, 0])
    for r in rows:
        if r["status"] == "done" and r["reading"] and r["reading"].get("asked"):
            reads[r["reading"]["asked"]][0] += bool(r["reading"]["match"])
            reads[r["reading"]["asked"]][1] += 1
    if reads:
        echo("read back (speech against its source): " + ", ".join(
            f"{e} {m}/{n}" for e, (m, n) in sorted(reads.items())))
        _write_page(out, rows, reads)
        echo(f"  page: {out / 'render.html'}")


def _write_page(out: Path, rows: list[dict], reads: dict) -> None:
    from conditioning.io import atomic_write
    from evaluators.report import html_page, html_table

    per_emotion = {e: f"{m} of {n} read as asked" for e, (m, n) in sorted(reads.items())}
    def cells(r: dict) -> str:
        reading = r["reading"] or {}
        others = "; ".join(f"{o['recognizer']}: {o['category']}" for o in reading.get("others", []))
        values = (r["id"], r["medium"], reading.get("asked") or r["emotion"], reading.get("category", "-"),
                  reading.get("recognizer", "-"), others or "-", ", ".join(f["path"] for f in r["files"] or []))
        return "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>"

    table = ("<table><tr><th>job</th><th>medium</th><th>asked</th><th>read</th><th>by</th>"
             "<th>the other readers</th><th>files</th></tr>"
             + "".join(cells(r) for r in rows if r["status"] == "done") + "</table>")
    body = ("<h1>affect render: what each output delivered</h1>"
            "<p>Each output read back by its medium's recognizer (speech against its source recording, "
            "the speaker-normalised reading), and beside it by the medium's other readers (faces: "
            "face-facex-v1; music audio: music-audio-v1 and music-musicnn-v1; speech: the plain "
            "reading). A reading is one judge's opinion; where readers disagree, both are shown.</p>"
            "<h2>Per emotion</h2>" + html_table(per_emotion) + "<h2>Jobs</h2>" + table)
    with atomic_write(out / "render.html", "w") as tmp:
        Path(tmp).write_text(html_page("affect render", body), "utf-8")

