"""``affect bench``: wall-clock figures of each pipeline on the machine at hand.

Each task runs once to warm up (model load, soundfont load) and then ``repeats`` times; the
median and the minimum are reported with the settings used.
"""

from __future__ import annotations

import statistics
import time


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

    from apps.cli import quiet_diffusers
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


BENCHES = {"music": bench_music}


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
