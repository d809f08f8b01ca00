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


def bench_render(repeats: int, device: str) -> list[dict]:
    """Jobs per minute of ``affect render`` on the fixed mixed job file ``configs/render/bench.yaml``
    (10 jobs: speech, faces chained to speech, music with audio), at 1 and 2 workers, each run from
    a cold start (every worker loads its models: that is part of a batch's cost)."""
    import os
    import tempfile

    from apps.render import load_jobfile, render
    from configs import config_path

    jobfile = config_path("render/bench.yaml")
    n = len(load_jobfile(jobfile, tempfile.gettempdir()))
    rows = []
    for workers in (1, 2):
        times = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="affect-bench-render-") as out:
                t = time.perf_counter()
                s = render(jobfile, out, workers=workers, device=device, quiet=True, echo=lambda *_: None)
                times.append(time.perf_counter() - t)
                if s.failed:
                    raise RuntimeError(f"render benchmark: {s.failed} job(s) failed: {s.failures[:1]}")
        med, best = statistics.median(times), min(times)
        threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else "default"
        rows.append({"medium": "render", "task": f"{n} mixed jobs, {workers} worker(s)",
                     "seconds_median": med, "seconds_min": best, "repeats": repeats,
                     "note": f"{n / med * 60:.1f} jobs/min (best {n / best * 60:.1f}); {threads} threads per "
                             f"worker, {os.cpu_count()} cores, {device}; models loaded once per worker",
                     "jobs_per_minute": n / med * 60})
    return rows


BENCHES = {"music": bench_music, "speech": bench_speech, "face": bench_face, "render": bench_render}


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
