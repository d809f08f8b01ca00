"""The benchmark's report: what it states about precision and memory for each device, and the
rows ``run_bench`` returns."""

import re
import time

import pytest

from apps.bench import gpu_peak, run_bench, vocoder_precision


def test_the_vocoder_precision_follows_the_device():
    assert vocoder_precision("cuda") == vocoder_precision("cuda:1") == "float16"
    assert vocoder_precision("cpu") == "float32"


def test_the_gpu_peak_is_reported_only_for_a_cuda_run():
    assert gpu_peak({"gpu_peak_mb": None}) == ""
    assert gpu_peak({}) == ""
    assert gpu_peak({"gpu_peak_mb": 161.35}) == "; GPU peak 161 MB"


def test_run_bench_times_the_music_tasks_it_names(tiny_music_pipeline, monkeypatch):
    """``run_bench(["music"], repeats=1)`` on a tiny pipeline that writes one bar in one step
    whatever the bench asks (the 16-bar default takes about two minutes here): two rows, each
    timing one run after a warm-up, the audio row's real-time factor that of its own numbers."""
    from generators.music import MusicPipeline

    calls = []  # (what the bench asked, how long the call took, the output)

    class OneBar:
        def __getattr__(self, name):  # scheduler, set_progress_bar_config, ...
            return getattr(tiny_music_pipeline, name)

        def to(self, device):
            calls.append(("to", device))
            return self

        def __call__(self, **asked):
            t = time.perf_counter()
            out = tiny_music_pipeline(**{**asked, "num_bars": 1, "num_inference_steps": 1})
            calls.append((asked, time.perf_counter() - t, out))
            return out

    monkeypatch.setattr(MusicPipeline, "from_pretrained", classmethod(lambda cls, *a, **k: OneBar()))
    t = time.perf_counter()
    rows = run_bench(["music"], repeats=1)
    elapsed = time.perf_counter() - t

    assert calls[0] == ("to", "cpu")
    runs = calls[1:]
    # audio: warm-up, the timed run, one more for the audio's length; MIDI: warm-up, timed run
    assert [c[0]["output_type"] for c in runs] == ["audio"] * 3 + ["midi"] * 2
    assert all(c[0]["emotion"] == "happy@0.8" and c[0]["num_bars"] == 16 for c in runs)
    assert [c[0]["generator"].initial_seed() for c in runs] == [0, 1, 2, 3, 4]
    assert [r["task"] for r in rows] == ["16 bars generated + rendered (default settings)",
                                         "16 bars generated, MIDI only"]
    for row, timed in zip(rows, (runs[1], runs[4])):
        assert set(row) == {"medium", "task", "seconds_median", "seconds_min", "repeats", "note"}
        assert row["medium"] == "music" and row["repeats"] == 1
        assert row["seconds_min"] == row["seconds_median"] > 0  # one run: its time is both
        # the bench's time is the timed call's, plus at most the call's own overhead
        assert timed[1] <= row["seconds_median"] <= timed[1] + 0.05 + 0.1 * timed[1]
    assert sum(r["seconds_median"] for r in rows) < elapsed
    audio_s = len(runs[2][2].audio) / runs[2][2].sample_rate
    m = re.fullmatch(r"(\d+\.\d) s of audio, real-time factor (\d+\.\d{3}); pipeline load "
                     r"(\d+\.\d) s; (\d+) threads, cpu", rows[0]["note"])
    assert m, rows[0]["note"]
    assert float(m[1]) == round(audio_s, 1) and audio_s > 1.0
    assert float(m[2]) == pytest.approx(rows[0]["seconds_median"] / audio_s, abs=6e-4)
    assert 0 <= float(m[3]) < elapsed and int(m[4]) >= 1


def test_run_bench_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match=r"^no benchmark for poetry; available: music, speech, face, render, precision$"):
        run_bench(["music", "poetry"])
    with pytest.raises(ValueError, match=r"^--repeats must be >= 1$"):
        run_bench(["music"], repeats=0)
