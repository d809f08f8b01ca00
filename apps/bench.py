"""``affect bench``: wall-clock figures of each pipeline on the machine at hand.

Each task runs once to warm up (model load, soundfont load) and then ``repeats`` times; the
median and the minimum are reported with the settings used.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from apps.jobs import JobResult, Models
from apps.jobs.base import check_device, validator


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def bench_music(repeats: int, device: str) -> list[dict]:
    import torch

    from apps.common import quiet_diffusers
    from generators.music import MusicPipeline

    quiet_diffusers()
    t = time.perf_counter()
    pipe = MusicPipeline.from_pretrained().to(device)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t
    rows = []
    seeds = iter(range(1000))

    def run(output_type):
        return lambda: pipe(
            emotion="happy@0.8",
            num_bars=16,
            output_type=output_type,
            generator=torch.Generator().manual_seed(next(seeds)),
        )

    med, best = _time(run("audio"), repeats)
    out = run("audio")()
    audio_s = len(out.audio) / out.sample_rate
    rows.append(
        {
            "medium": "music",
            "task": "16 bars generated + rendered (default settings)",
            "seconds_median": med,
            "seconds_min": best,
            "repeats": repeats,
            "note": f"{audio_s:.1f} s of audio, real-time factor {med / audio_s:.3f}; "
            f"pipeline load {load_s:.1f} s; {torch.get_num_threads()} threads, {device}",
        }
    )
    med, best = _time(run("midi"), repeats)
    rows.append(
        {
            "medium": "music",
            "task": "16 bars generated, MIDI only",
            "seconds_median": med,
            "seconds_min": best,
            "repeats": repeats,
            "note": f"{pipe.scheduler.__class__.__name__}, 12 steps, guidance 2",
        }
    )
    return rows


REAL_SPEECH = "/usr/share/pocketsphinx/test/data"


def real_speech_30s():
    """30 s of real recorded speech: the LibriVox excerpts and spoken card names of Debian's
    pocketsphinx-testdata, joined with 0.3 s pauses, at 16 kHz."""
    import glob

    import numpy as np
    import soundfile as sf

    files = sorted(glob.glob(f"{REAL_SPEECH}/librivox/*.wav")) + sorted(glob.glob(f"{REAL_SPEECH}/cards/*.wav"))
    if not files:
        raise FileNotFoundError(2, "no real speech to time (install Debian's pocketsphinx-testdata)",
                                REAL_SPEECH)
    parts, total = [], 0
    while total < 30 * 16000:
        for f in files:
            x, sr = sf.read(f, dtype="float32")
            parts += [x, np.zeros(int(0.3 * sr), np.float32)]
            total += len(x) + int(0.3 * sr)
            if total >= 30 * 16000:
                break
    return np.concatenate(parts)[: 30 * 16000], 16000


_SPEECH_CHILD = """
import json, resource, sys, time, torch
from apps.bench import real_speech_30s
from apps.common import quiet_diffusers
from generators.speech import EmotionVoiceConversionPipeline
quiet_diffusers()
vocoder = sys.argv[3]
t = time.perf_counter()
pipe = EmotionVoiceConversionPipeline.from_pretrained().to(sys.argv[1])
pipe.set_progress_bar_config(disable=True)
pipe.vocoder(vocoder); pipe.speaker_encoder()
load = time.perf_counter() - t
wav, sr = real_speech_30s()
pipe(wav[: sr * 3], sr, emotion="angry@0.7", vocoder=vocoder)  # warm-up
times = []
for i in range(int(sys.argv[2])):
    t = time.perf_counter()
    out = pipe(wav, sr, emotion="angry@0.7", generator=torch.Generator().manual_seed(i), vocoder=vocoder)
    times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "load": load, "in_s": len(wav) / sr, "out_s": out.duration,
                  "threads": torch.get_num_threads(), "isa": torch.backends.cpu.get_cpu_capability(),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "gpu_peak_mb": (torch.cuda.max_memory_allocated() / 2**20
                                  if sys.argv[1].startswith("cuda") else None)}))
"""

#: PyTorch's and oneDNN's SIMD limited to AVX2: what a laptop CPU without AVX-512 runs
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def vocoder_precision(device: str) -> str:
    """What the neural vocoder computes in at the default settings (``vocoder_precision="auto"``)."""
    return "float16" if device.startswith("cuda") else "float32"


def gpu_peak(r: dict) -> str:
    """", GPU peak N MB" where the child ran on a CUDA device (torch's own allocations)."""
    return "" if r.get("gpu_peak_mb") is None else f"; GPU peak {r['gpu_peak_mb']:.0f} MB"


def _speech_child(device: str, repeats: int, vocoder: str, avx2: bool) -> dict:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, **(AVX2_ENV if avx2 else {})}
    proc = subprocess.run([sys.executable, "-c", _SPEECH_CHILD, device, str(repeats), vocoder],
                          capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"speech benchmark failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_speech(repeats: int, device: str) -> list[dict]:
    """Converts 30 s of real speech with each neural vocoder, each in a fresh process (so its
    peak memory is the pipeline's); on a CPU natively and again with the SIMD limited to AVX2."""
    from evaluators.report import machine
    from generators.speech.pipeline_speech import FAST_VOCODER_DIR

    vocoders = ["hifigan"] + (["fast"] if (FAST_VOCODER_DIR / "config.json").is_file() else [])
    modes = [False, True] if device == "cpu" else [False]
    rows = []
    for avx2 in modes:
        for vocoder in vocoders:
            r = _speech_child(device, repeats, vocoder, avx2)
            med, best = statistics.median(r["times"]), min(r["times"])
            name = "HiFi-GAN V1" if vocoder == "hifigan" else "FastVocoder"
            mode = f", SIMD limited to AVX2 ({r['isa']})" if avx2 else f", native SIMD ({r['isa']})"
            rows.append({
                "medium": "speech",
                "task": f"convert 30 s of real speech, angry@0.7, {name}{mode if device == 'cpu' else ''}",
                "seconds_median": med,
                "seconds_min": best,
                "repeats": repeats,
                "note": f"real-time factor {med / r['in_s']:.3f}; peak memory {r['peak_mb']:.0f} MB "
                f"(whole process{gpu_peak(r)}); load {r['load']:.1f} s; 10 steps, guidance 1.5, vocoder "
                f"in {vocoder_precision(device)}; {r['threads']} threads, {device}"
                + (f" ({machine()})" if device == "cpu" else ""),
                "vocoder": vocoder,
                "simd": r["isa"],
                "real_time_factor": med / r["in_s"],
                "peak_memory_mb": r["peak_mb"],
                "gpu_peak_memory_mb": r.get("gpu_peak_mb"),
            })
    return rows


_FACE_CHILD = """
import json, os, resource, sys, tempfile, time, torch
from skimage import data
from apps.bench import real_speech_30s
from apps.common import quiet_diffusers
from generators.face import TalkingHeadPipeline
from generators.face.portrait import analyse_portrait
from generators.face.video import probe_video
quiet_diffusers()
t = time.perf_counter()
pipe = TalkingHeadPipeline.from_pretrained().to(sys.argv[1])
pipe.set_progress_bar_config(disable=True)
load = time.perf_counter() - t
wav, sr = real_speech_30s()
wav = wav[: 10 * sr]
face = int(sys.argv[3])
d = tempfile.mkdtemp()
pipe(data.astronaut(), wav[: sr], sr, emotion="happy@0.8", face_resolution=face).save(f"{d}/w.mp4")
times = []
for i in range(int(sys.argv[2])):
    t = time.perf_counter()
    out = pipe(data.astronaut(), wav, sr, emotion="happy@0.8", face_resolution=face,
               generator=torch.Generator().manual_seed(i), seed=i)
    out.save(f"{d}/o.mp4")
    times.append(time.perf_counter() - t)
info = probe_video(f"{d}/o.mp4")
print(json.dumps({"times": times, "load": load, "in_s": len(wav) / sr, "frames": out.n_frames,
                  "size": out.portrait.size, "threads": torch.get_num_threads(),
                  "mb": os.path.getsize(f"{d}/o.mp4") / 1e6, "codec": info.video_codec,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_face(repeats: int, device: str, face_resolution: int = 256) -> list[dict]:
    """A 10 s talking head from the demo portrait and real speech, portrait analysis, motion,
    rendering and H.264/AAC encoding included, in a fresh process."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _FACE_CHILD, device, str(repeats), str(face_resolution)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"face benchmark failed: {proc.stderr.strip().splitlines()[-1:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    med, best = statistics.median(r["times"]), min(r["times"])
    return [{
        "medium": "face",
        "task": f"10 s talking head, face {face_resolution} px, frame {r['size']} px, mp4 (defaults)",
        "seconds_median": med,
        "seconds_min": best,
        "repeats": repeats,
        "note": f"real-time factor {med / r['in_s']:.3f}; {r['frames']} frames at 25 fps, "
        f"{r['codec']} {r['mb']:.1f} MB; peak memory {r['peak_mb']:.0f} MB (whole process); "
        f"load {r['load']:.1f} s; {r['threads']} threads, {device}",
        "real_time_factor": med / r["in_s"],
        "peak_memory_mb": r["peak_mb"],
    }]


def _render_rows(jobfile, label: str, settings: list[dict], repeats: int, device: str) -> list[dict]:
    """Jobs per minute of ``affect render`` on ``jobfile`` for each of ``settings`` (workers,
    batch_size, precision), each run from a cold start (every worker loads its models)."""
    import os
    import tempfile

    from apps.jobs.base import resolve_precision
    from apps.render import load_jobfile, render

    n = len(load_jobfile(jobfile, tempfile.gettempdir()))
    rows = []
    for st in settings:
        workers, batch, precision = st.get("workers", 1), st.get("batch_size", 1), st.get("precision", "auto")
        times = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="affect-bench-render-") as out:
                t = time.perf_counter()
                s = render(jobfile, out, workers=workers, device=device, quiet=True, batch_size=batch,
                           precision=precision, echo=lambda *_: None)
                times.append(time.perf_counter() - t)
                if s.failed:
                    raise RuntimeError(f"render benchmark: {s.failed} job(s) failed: {s.failures[:1]}")
        med, best = statistics.median(times), min(times)
        threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else "default"
        rows.append({"medium": "render",
                     "task": f"{n} {label}, {workers} worker(s), batch {batch}, "
                             f"{resolve_precision(device, precision)}",
                     "seconds_median": med, "seconds_min": best, "repeats": repeats,
                     "note": f"{n / med * 60:.1f} jobs/min (best {n / best * 60:.1f}); {threads} threads per "
                             f"worker, {os.cpu_count()} cores, {device}; models loaded once per worker",
                     "jobs_per_minute": n / med * 60, "workers": workers, "batch_size": batch,
                     "precision": resolve_precision(device, precision)})
    return rows


def bench_render(repeats: int, device: str) -> list[dict]:
    """Jobs per minute of ``affect render``: the fixed mixed job file ``configs/render/bench.yaml``
    (10 jobs: speech, faces chained to speech, music with audio) at 1 and 2 workers and at 1 worker
    with batches of 4; and ``bench_batch.yaml`` (25 jobs of few shapes: one line in ten emotions
    and intensities, five heads speaking one file, ten 8-bar cues) one job at a time and in
    batches of 8; on CUDA also in float32 against float16."""
    from configs import config_path

    mixed, shapes = config_path("render/bench.yaml"), config_path("render/bench_batch.yaml")
    rows = _render_rows(mixed, "mixed jobs", [{"workers": 1}, {"workers": 2}, {"batch_size": 4}], repeats, device)
    settings = [{"batch_size": 1}, {"batch_size": 8}]
    if str(device).startswith("cuda"):
        settings = [{"batch_size": 1, "precision": "float32"}, {"batch_size": 8, "precision": "float32"},
                    {"batch_size": 1, "precision": "float16"}, {"batch_size": 8, "precision": "float16"},
                    {"batch_size": 16, "precision": "float16"}]
    return rows + _render_rows(shapes, "jobs of few shapes", settings, repeats, device)


def bench_precision(repeats: int, device: str) -> list[dict]:
    """What float16 denoisers change against float32, beside what a different seed changes (the
    yardstick: a change well inside the seed-to-seed spread is one no listener or viewer could
    attribute to precision). Three emotions per medium on real inputs. On a CPU float16 runs
    slowly and is there for this check; CUDA is where it is the default."""
    import numpy as np
    import torch

    from apps.jobs import Models
    from evaluators.loop_vocoder import log_mel_distance
    from generators.face.portrait import analyse_portrait

    wav = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"
    emotions = ["angry@0.8", "sad@0.8", "happy@0.8"]
    models = Models()
    g = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731
    rows = []

    def runs(kind, call):
        """(float32, float16, float32 with another seed) outputs for each emotion, and the times."""
        outs, secs = [], {"float32": 0.0, "float16": 0.0}
        for i, e in enumerate(emotions):
            trio = []
            for precision, seed in (("float32", i), ("float16", i), ("float32", i + 100)):
                with models.use(kind, None, device, precision) as pipe:
                    t = time.perf_counter()
                    trio.append(call(pipe, e, g(seed)))
                    if seed == i:
                        secs[precision] += time.perf_counter() - t
            outs.append(trio)
        return outs, secs

    def row(task: str, secs: dict, note: str) -> dict:
        return {"medium": "precision", "task": f"{task}: float16 against float32",
                "seconds_median": secs["float16"] / 3, "seconds_min": secs["float16"] / 3, "repeats": 1,
                "note": note}

    def notes(out):
        return {(n.start, n.length, n.pitch, n.track) for n in out.notes}

    def jaccard(a, b):
        return len(a & b) / max(1, len(a | b))

    import io

    import pretty_midi

    from evaluators.recognizers import load_recognizer

    reader = load_recognizer("music-features-v1", "music")
    # the tonic fixed, so that a second seed changes the notes, not the key they are written in
    music, secs = runs("music", lambda p, e, gen: p(emotion=e, num_bars=8, tonic="C", generator=gen,
                                                   output_type="midi"))
    same = sum(a.midi == b.midi for a, b, _ in music)
    j16 = np.mean([jaccard(notes(a), notes(b)) for a, b, _ in music])
    jseed = np.mean([jaccard(notes(a), notes(c)) for a, _, c in music])
    read = [[reader(pretty_midi.PrettyMIDI(io.BytesIO(o.midi))) for o in trio] for trio in music]
    agree16 = sum(r[0].category == r[1].category for r in read)
    agree_seed = sum(r[0].category == r[2].category for r in read)

    def va(r):
        return np.array([r.valence, r.arousal], dtype=float)

    va16 = np.mean([np.linalg.norm(va(r[0]) - va(r[1])) for r in read])
    va_seed = np.mean([np.linalg.norm(va(r[0]) - va(r[2])) for r in read])
    rows.append(row("music, 8 bars", secs, f"MIDI byte-identical {same}/3; notes shared (Jaccard) {j16:.3f}, against "
                         f"{jseed:.3f} between two seeds; music-features-v1 reads the same category "
                         f"{agree16}/3 (two seeds: {agree_seed}/3), valence-arousal moved {va16:.3f} "
                         f"(two seeds: {va_seed:.3f}); {secs['float32'] / 3:.2f} s a piece in float32, {device}"))
    speech, secs = runs("speech", lambda p, e, gen: p(wav, emotion=e, generator=gen))
    d16 = [np.abs(a.changes - b.changes).max(0) for a, b, _ in speech]
    dseed = [np.abs(a.changes - c.changes).max(0) for a, _, c in speech]
    m16 = np.mean([log_mel_distance(a.audio, a.sample_rate, b.audio, b.sample_rate) for a, b, _ in speech])
    mseed = np.mean([log_mel_distance(a.audio, a.sample_rate, c.audio, c.sample_rate) for a, _, c in speech])
    rows.append(row("speech, 3 s of LibriVox", secs, f"largest F0 change difference {max(d[0] for d in d16):.3f} st (two seeds: "
                         f"{max(d[0] for d in dseed):.2f}), level {max(d[1] for d in d16):.3f} dB (two seeds: "
                         f"{max(d[1] for d in dseed):.2f}); log-mel distance {m16:.4f} (two seeds: {mseed:.4f}); "
                         f"{secs['float32'] / 3:.2f} s a line in float32, {device}"))
    portrait = analyse_portrait(_portrait_path(), 192)
    face, secs = runs("face", lambda p, e, gen: p(None, wav, emotion=e, generator=gen, portrait=portrait))
    p16 = np.mean([np.abs(a.params - b.params).mean() for a, b, _ in face])
    pseed = np.mean([np.abs(a.params - c.params).mean() for a, _, c in face])
    rows.append(row("face, 3 s of speech", secs, f"mean rig-parameter difference {p16:.5f} (two seeds: "
                    f"{pseed:.4f}); {secs['float32'] / 3:.2f} s a head's motion in float32 (not rendered), {device}"))
    return rows


def _portrait_path() -> str:
    from configs import config_path

    return str(config_path("render/portrait.jpg"))


BENCHES = {"music": bench_music, "speech": bench_speech, "face": bench_face, "render": bench_render,
           "precision": bench_precision}


def run_bench(media: list[str], repeats: int = 3, device: str = "cpu") -> list[dict]:
    unknown = [m for m in media if m not in BENCHES]
    if unknown:
        raise ValueError(f"no benchmark for {', '.join(unknown)}; available: {', '.join(BENCHES)}")
    if repeats < 1:
        raise ValueError("--repeats must be >= 1")
    rows = []
    for medium in media or list(BENCHES):
        rows += BENCHES[medium](repeats, device)
    return rows


@dataclass
class BenchJob:
    """``affect bench``: wall-clock figures of each pipeline on this machine."""

    media: list[str] = field(default_factory=lambda: ["music"])
    repeats: int = 3
    device: str = "cpu"
    medium = "bench"

    @validator
    def validate(self) -> None:
        check_device(self.device)

    def run(self, models: Models) -> JobResult:
        rows = run_bench(self.media, repeats=self.repeats, device=self.device)
        lines = [f"{r['medium']:<6} {r['task']:<48} {r['seconds_median']:7.2f} s "
                 f"(min {r['seconds_min']:.2f}, {r['repeats']} runs)  {r['note']}" for r in rows]
        return JobResult(self, [], lines, rows)
