"""`affect render`: job files and their errors, expansion, chaining, resume after a crash, escaping
paths refused, and the Ray path on a local instance the test starts."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from apps.cli import main
from apps.render import JobFileError, load_jobfile, render

CARD = Path("/usr/share/pocketsphinx/test/data/cards/001.wav")
CARD2 = Path("/usr/share/pocketsphinx/test/data/cards/002.wav")
ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "configs" / "render" / "portrait.jpg"
EMPTY = Path("/tmp/affect-test-empty-checkpoint")  # a folder that is not a checkpoint: fails at load
EMPTY.mkdir(exist_ok=True)


def _write(tmp_path: Path, text: str, name: str = "jobs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(out: Path) -> dict[str, dict]:
    db = sqlite3.connect(str(out / "manifest.sqlite"))
    cur = db.execute("SELECT id, status, files, error, updated, key, reading FROM jobs")
    rows = {r[0]: {"status": r[1], "files": json.loads(r[2]), "error": r[3], "updated": r[4], "key": r[5],
                   "reading": json.loads(r[6]) if r[6] else None} for r in cur}
    db.close()
    return rows


# -- parsing ---------------------------------------------------------------------------------------
def test_every_error_of_a_file_is_reported_with_its_line(tmp_path):
    (tmp_path / "in.wav").write_bytes(CARD.read_bytes())
    path = _write(tmp_path, f"""\
jobs:
  - {{id: a, medium: speech, input: in.wav, emotion: angry, output: s/a.wav}}
  - {{id: b, medium: speech, input: in.wav, emotion: blorp, output: s/b.wav}}
  - {{id: c, medium: speech, input: nothere.wav, emotion: sad, output: s/c.wav}}
  - {{id: d, medium: speech, input: in.wav, emotoin: sad, output: s/d.wav}}
  - {{id: e, medium: speech, input: in.wav, emotion: sad, output: s/a.wav}}
  - {{id: f, medium: face, portrait: {PORTRAIT}, speech: nobody, emotion: sad, output: f/f.mp4}}
  - {{id: g, medium: face, portrait: {PORTRAIT}, speech: g, emotion: sad, output: f/g.mp4}}
  - {{id: h, medium: music, emotion: sad, output: ../../escape.mid}}
  - {{id: a, medium: music, emotion: sad, output: m/a.mid}}
  - {{id: i, medium: music, emotion: sad, output: m/i.mid, options: {{bars: 500}}}}
  - {{id: j, medium: opera, emotion: sad, output: m/j.mid}}
""")
    with pytest.raises(JobFileError) as info:
        load_jobfile(path, tmp_path / "out")
    errors = info.value.errors
    expected = [
        ("jobs.yaml:3:", "unknown emotion 'blorp'"),
        ("jobs.yaml:4:", "nothere.wav"),
        ("jobs.yaml:5:", "unknown key(s) emotoin"),
        ("jobs.yaml:6:", "duplicate output s/a.wav"),
        ("jobs.yaml:7:", "'nobody' is not the id of a job"),
        ("jobs.yaml:8:", "cannot speak itself"),
        ("jobs.yaml:9:", "would land outside the output folder"),
        ("jobs.yaml:10:", "duplicate id 'a' (first at line 2)"),
        ("jobs.yaml:11:", "--bars must be in [1, 64]"),
        ("jobs.yaml:12:", "medium must be speech, music or face"),
    ]
    for prefix, text in expected:
        assert any(e.startswith(prefix) and text in e for e in errors), (prefix, text, errors)
    assert not any(e.startswith("jobs.yaml:2:") for e in errors)
    assert not (tmp_path / "out").exists()  # nothing made before the file is right


def test_the_command_prints_every_error_and_runs_nothing(tmp_path, capsys):
    path = _write(tmp_path, "jobs:\n  - {medium: music, emotion: blorp, output: a.mid}\n"
                            "  - {medium: music, emotion: sad, output: /abs.mid}\n")
    code = main(["render", str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 2
    assert err[0].startswith("affect: error: jobs.yaml:2:") and "blorp" in err[0]
    assert err[1].startswith("affect: error: jobs.yaml:3:") and "is absolute" in err[1]
    assert not (tmp_path / "out").exists()


def test_jsonl_lines_and_yaml_matrix_expand(tmp_path, capsys):
    path = _write(tmp_path, json.dumps({"medium": "music", "emotion": "calm", "output": "a.mid"}) + "\n\n"
                  + "{not json}\n", "jobs.jsonl")
    with pytest.raises(JobFileError) as info:
        load_jobfile(path, tmp_path / "out")
    assert info.value.errors == ["jobs.jsonl:3: not JSON (Expecting property name enclosed in double quotes)"]
    path = _write(tmp_path, f"""\
defaults: {{seed: 4, options: {{steps: 8}}}}
jobs:
  - matrix: {{input: [{CARD}, {CARD2}], emotion: [angry, sad@0.5], intensity: [0.5, 1.0]}}
    id: line
    medium: speech
    output: "speech/{{input}}_{{emotion}}_{{intensity}}.wav"
""")
    items = load_jobfile(path, tmp_path / "out")
    assert len(items) == 8 and [it.id for it in items] == [f"line_{i}" for i in range(8)]
    names = sorted(Path(it.job.output).name for it in items)
    assert names[0] == "001_angry_0.5.wav" and "002_sad@0.5_1.0.wav" in names
    assert all(it.job.seed == 4 and it.job.steps == 8 and it.line == 3 for it in items)
    assert {it.job._spec.to_string() for it in items} == {"angry@0.5", "angry@1", "sad@0.5", "sad@1"}
    assert main(["render", str(path), "-o", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would run line_") == 8 and "8 job(s) checked; nothing run" in out
    assert not (tmp_path / "out").exists()


def test_a_model_folder_beside_the_job_file_is_found_there(tmp_path):
    (tmp_path / "ckpt").mkdir()
    items = load_jobfile(_write(tmp_path, "jobs:\n  - {medium: music, emotion: sad, output: m.mid, "
                                          "options: {model: ckpt}}\n  - {medium: music, emotion: sad, "
                                          "output: n.mid, options: {model: owner/name}}\n"), tmp_path / "out")
    assert items[0].job.model == str(tmp_path / "ckpt")
    assert items[1].job.model == "owner/name"  # no such folder here: a hub id, as given


def test_the_example_files_parse():
    for name in ("example.yaml", "lines.jsonl"):
        items = load_jobfile(ROOT / "configs" / "render" / name, "/tmp/affect-render-example")
        assert items and any(it.speech_id for it in items)


# -- running, chaining, isolation -------------------------------------------------------------------
JOBS = f"""\
jobs:
  - {{id: s1, medium: speech, input: {CARD}, emotion: angry@0.9, seed: 1, output: speech/s1.wav}}
  - {{id: f1, medium: face, portrait: {PORTRAIT}, speech: s1, emotion: angry@0.9, output: face/f1.mp4,
      options: {{face_resolution: 96}}}}
  - {{id: m1, medium: music, emotion: sad, seed: 2, output: music/m1.mid, options: {{bars: 2, wav: true}}}}
  - {{id: m2, medium: music, emotion: happy, seed: 3, output: music/m2.mid, options: {{bars: 2}}}}
  - {{id: bad, medium: face, portrait: {PORTRAIT}, audio: {CARD}, emotion: sad, output: face/bad.mp4,
      options: {{face_resolution: 96, model: {EMPTY}}}}}
"""


def test_render_chains_isolates_failures_and_resumes(tmp_path, capsys):
    path = _write(tmp_path, JOBS)
    out = tmp_path / "out"
    summary = render(path, out, quiet=True, read=True)
    assert (summary.done, summary.failed, summary.skipped) == (4, 1, 0) and summary.exit_status == 1
    rows = _rows(out)
    assert rows["bad"]["status"] == "failed" and "is not a face checkpoint" in rows["bad"]["error"]
    assert "\n" not in rows["bad"]["error"] and rows["bad"]["files"] == []
    assert [f["path"] for f in rows["m1"]["files"]] == ["music/m1.mid", "music/m1.wav"]
    # read back: each medium's reader of record, and its other readers beside it
    assert rows["s1"]["reading"]["reading"] == "against the source"
    assert [o["recognizer"] for o in rows["s1"]["reading"]["others"]] == ["speech-prosody-v1"]
    assert [o["recognizer"] for o in rows["f1"]["reading"]["others"]] == ["face-facex-v1"]
    assert [o["recognizer"] for o in rows["m1"]["reading"]["others"]] == ["music-audio-v1", "music-musicnn-v1"]
    assert "face-facex-v1" in (out / "render.html").read_text()
    # the face speaks the speech job's output
    speech, sr = sf.read(out / "speech" / "s1.wav")
    from generators.face.video import probe_video

    assert abs(probe_video(out / "face" / "f1.mp4").duration - len(speech) / sr) < 0.1
    # re-run: nothing done is redone
    before = {k: v["updated"] for k, v in rows.items()}
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".wav", ".mid", ".mp4")}
    summary = render(path, out, quiet=True)
    assert (summary.done, summary.failed, summary.skipped) == (0, 1, 4)
    after = _rows(out)
    assert all(after[k]["updated"] == before[k] for k in ("s1", "f1", "m1", "m2"))
    assert mtimes == {p: p.stat().st_mtime_ns for p in mtimes}
    # a changed option redoes that job only (and the face that speaks a changed speech job)
    path.write_text(JOBS.replace("emotion: angry@0.9, seed: 1", "emotion: angry@0.9, seed: 5"))
    summary = render(path, out, quiet=True)
    assert (summary.done, summary.skipped) == (2, 2)
    # a damaged output is redone
    (out / "music" / "m2.mid").write_bytes(b"MThd")
    summary = render(path, out, quiet=True)
    assert (summary.done, summary.skipped) == (1, 3)
    capsys.readouterr()


def test_a_failed_speech_job_fails_the_face_that_speaks_it(tmp_path):
    path = _write(tmp_path, f"""\
jobs:
  - {{id: s, medium: speech, input: {CARD}, emotion: sad, output: s.wav, options: {{model: {EMPTY}}}}}
  - {{id: f, medium: face, portrait: {PORTRAIT}, speech: s, emotion: sad, output: f.mp4}}
""")
    summary = render(path, tmp_path / "out", quiet=True, echo=lambda *_: None)
    rows = _rows(tmp_path / "out")
    assert summary.failed == 2 and rows["f"]["error"] == "its speech job 's' failed"


def test_resume_after_a_crash(tmp_path):
    """Kill the command (SIGKILL) once some jobs are recorded; the re-run does the rest only, and
    the manifest agrees with the files."""
    lines = "\n".join(f"  - {{id: m{i}, medium: music, emotion: {e}, seed: {i}, output: m/{i}.mid, "
                      f"options: {{bars: 4, wav: true}}}}"
                      for i, e in enumerate(["sad", "happy", "calm", "angry", "fearful", "surprised"]))
    path = _write(tmp_path, "jobs:\n" + lines + "\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "apps.cli", "render", str(path), "-o", str(out), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if (out / "manifest.sqlite").exists() and len([r for r in _safe_rows(out) if r]) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = _rows(out)
    assert 2 <= len(first) < 6, first
    summary = render(path, out, quiet=True, echo=lambda *_: None)
    assert summary.skipped == len(first) and summary.done == 6 - len(first) and summary.failed == 0
    rows = _rows(out)
    assert all(rows[k]["updated"] == first[k]["updated"] for k in first)  # none redone
    from apps.jobs.base import file_digest

    for r in rows.values():
        assert r["status"] == "done"
        for f in r["files"]:
            assert file_digest(out / f["path"]) == f["sha256"]
    assert not [p for p in out.rglob(".*.part*")]  # no temp file left


def _safe_rows(out: Path) -> list:
    try:
        return list(_rows(out).values())
    except sqlite3.Error:
        return []


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path):
    lines = "\n".join(f"  - {{id: m{i}, medium: music, emotion: sad, seed: {i}, output: m/{i}.mid, "
                      f"options: {{bars: 4, wav: true}}}}" for i in range(6))
    path = _write(tmp_path, "jobs:\n" + lines + "\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "apps.cli", "render", str(path), "-o", str(out), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(_safe_rows(out)) < 1:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted:" in stdout and "run the same command again to resume" in stdout
    first = _rows(out)
    assert 1 <= len(first) < 6
    summary = render(path, out, quiet=True, echo=lambda *_: None)
    assert summary.skipped == len(first) and summary.done == 6 - len(first)
    assert not [p for p in out.rglob(".*.part*")]


def test_two_workers_match_one(tmp_path):
    lines = "\n".join(f"  - {{id: m{i}, medium: music, emotion: {e}, seed: {i}, output: m/{i}.mid, "
                      f"options: {{bars: 2}}}}" for i, e in enumerate(["sad", "happy", "calm", "angry"]))
    path = _write(tmp_path, "jobs:\n" + lines + "\n")
    one = render(path, tmp_path / "one", quiet=True, echo=lambda *_: None)
    two = render(path, tmp_path / "two", quiet=True, workers=2, echo=lambda *_: None)
    assert one.done == two.done == 4
    for i in range(4):
        assert (tmp_path / "one" / "m" / f"{i}.mid").read_bytes() == (tmp_path / "two" / "m" / f"{i}.mid").read_bytes()


# -- Ray -----------------------------------------------------------------------------------------
def test_ray_on_a_local_instance_gives_the_same_outputs(tmp_path):
    ray = pytest.importorskip("ray", reason="the [cluster] extra (Ray) is installed by .ci/setup --test")
    path = _write(tmp_path, f"""\
jobs:
  - {{id: s1, medium: speech, input: {CARD}, emotion: sad@0.8, seed: 1, output: speech/s1.wav}}
  - {{id: f1, medium: face, portrait: {PORTRAIT}, speech: s1, emotion: sad@0.8, output: face/f1.mp4,
      options: {{face_resolution: 96}}}}
  - {{id: m1, medium: music, emotion: happy, seed: 2, output: music/m1.mid, options: {{bars: 2}}}}
""")
    local = render(path, tmp_path / "local", quiet=True, echo=lambda *_: None)
    try:
        remote = render(path, tmp_path / "ray", quiet=True, ray="", workers=2, echo=lambda *_: None)
    finally:
        ray.shutdown()
    assert local.done == remote.done == 3
    a, b = tmp_path / "local", tmp_path / "ray"
    assert (a / "music" / "m1.mid").read_bytes() == (b / "music" / "m1.mid").read_bytes()
    x, _ = sf.read(a / "speech" / "s1.wav")
    y, _ = sf.read(b / "speech" / "s1.wav")
    assert x.shape == y.shape and np.abs(x - y).max() <= 2 / 32768  # 16-bit wav, thread-count rounding
    from generators.face.video import read_video_frames

    fa, fb = list(read_video_frames(a / "face" / "f1.mp4")), list(read_video_frames(b / "face" / "f1.mp4"))
    assert len(fa) == len(fb)
    assert max(np.abs(p.astype(int) - q.astype(int)).mean() for p, q in zip(fa, fb)) <= 1.0
    assert os.environ.get("RAY_ADDRESS") is None


def test_a_ctrl_c_swallowed_inside_a_job_still_stops_the_run(tmp_path, monkeypatch):
    """A KeyboardInterrupt raised in a callback that C code makes (the synthesizer's sequencer)
    can be swallowed there; the run still stops after that job, as interrupted."""
    import os

    import apps.render.runner as runner

    calls = []

    def job_that_swallows(payload):
        calls.append(payload["id"])
        if len(calls) == 1:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)  # the handler runs here and raises
            except KeyboardInterrupt:
                pass  # swallowed, as inside a C callback
        return {"id": payload["id"], "status": "done", "files": [], "seconds": 0.0}

    monkeypatch.setattr(runner, "execute", job_that_swallows)
    lines = "\n".join(f"  - {{id: m{i}, medium: music, emotion: sad, seed: {i}, output: m/{i}.mid}}" for i in range(3))
    summary = render(_write(tmp_path, "jobs:\n" + lines + "\n"), tmp_path / "out", quiet=True,
                     echo=lambda *_: None)
    assert summary.interrupted and summary.exit_status == 130
    assert calls == ["m0"] and summary.done == 1


# -- batches, precision, one worker per GPU ------------------------------------------------------
def _models_column(out: Path) -> dict[str, tuple]:
    db = sqlite3.connect(str(out / "manifest.sqlite"))
    rows = {r[0]: (json.loads(r[1]), json.loads(r[2]), r[3]) for r in db.execute("SELECT id, models, timings, key FROM jobs")}
    db.close()
    return rows


def test_batched_render_matches_one_at_a_time(tmp_path):
    """--batch-size 4: the three conversions of one line share the denoiser, so do the three
    pieces; faces follow their speech. The outputs are those of one job at a time: MIDI
    byte-identical, audio and video within a batch's rounding."""
    emotions = ["angry@0.9", "sad@0.9", "happy@0.9"]
    lines = []
    for i, e in enumerate(emotions):
        lines.append(f"  - {{id: s{i}, medium: speech, input: {CARD}, emotion: {e}, seed: {i}, output: s/{i}.wav, "
                     f"options: {{steps: 4}}}}")
        lines.append(f"  - {{id: f{i}, medium: face, portrait: {PORTRAIT}, speech: s{i}, emotion: {e}, seed: {i}, "
                     f"output: f/{i}.mp4, options: {{face_resolution: 96, steps: 4}}}}")
        lines.append(f"  - {{id: m{i}, medium: music, emotion: {e}, seed: {i}, output: m/{i}.mid, "
                     f"options: {{bars: 2}}}}")
    path = _write(tmp_path, "jobs:\n" + "\n".join(lines) + "\n")
    one = render(path, tmp_path / "one", quiet=True, echo=lambda *_: None)
    four = render(path, tmp_path / "four", quiet=True, batch_size=4, echo=lambda *_: None)
    assert one.done == four.done == 9 and one.failed == four.failed == 0
    a, b = tmp_path / "one", tmp_path / "four"
    for i in range(3):
        assert (a / "m" / f"{i}.mid").read_bytes() == (b / "m" / f"{i}.mid").read_bytes()
        x, _ = sf.read(a / "s" / f"{i}.wav")
        y, _ = sf.read(b / "s" / f"{i}.wav")
        assert x.shape == y.shape and np.abs(x - y).max() <= 0.002  # ~1e-6 in the changes, through WORLD
    from generators.face.video import read_video_frames

    for i in range(3):
        fa, fb = list(read_video_frames(a / "f" / f"{i}.mp4")), list(read_video_frames(b / "f" / f"{i}.mp4"))
        assert len(fa) == len(fb)
        assert max(np.abs(p.astype(int) - q.astype(int)).mean() for p, q in zip(fa, fb)) <= 1.0
    batched, alone = _models_column(b), _models_column(a)
    for medium in "smf":
        assert all(batched[f"{medium}{i}"][1]["batch_size"] == 3 for i in range(3)), batched
        assert "batch_size" not in alone[f"{medium}0"][1]
    assert batched["s0"][2] == alone["s0"][2]  # the same jobs: batching is not part of the key
    assert batched["m0"][0][0]["precision"] == "float32" and batched["m0"][0][0]["attention"] == "sdpa"
    assert batched["s0"][0][0]["attention"] == "none"  # the speech denoiser is convolutional


def test_float16_runs_and_is_its_own_job(tmp_path):
    """--precision float16 (meant for GPUs; it runs on a CPU, slowly): the denoiser runs in half
    precision, the manifest says so, and the jobs' keys differ from float32's, so a float16
    render never passes for a float32 one."""
    path = _write(tmp_path, f"""\
jobs:
  - {{id: m, medium: music, emotion: calm@0.7, seed: 4, output: m.mid, options: {{bars: 2}}}}
  - {{id: s, medium: speech, input: {CARD}, emotion: sad@0.8, seed: 1, output: s.wav,
      options: {{steps: 3, vocoder: world}}}}
""")
    render(path, tmp_path / "out", quiet=True, echo=lambda *_: None)
    full = _models_column(tmp_path / "out")
    summary = render(path, tmp_path / "out", quiet=True, precision="float16", echo=lambda *_: None)
    assert summary.done == 2 and summary.skipped == 0  # not mistaken for the float32 outputs
    half = _models_column(tmp_path / "out")
    assert half["m"][0][0]["precision"] == "float16" and half["m"][2] != full["m"][2]
    with pytest.raises(Exception, match="precision must be one of"):
        render(path, tmp_path / "out", precision="int8", echo=lambda *_: None)


def test_device_slots_give_each_worker_one_gpu():
    from apps.render.runner import device_slots

    assert device_slots("cuda", 3, gpus=2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert device_slots("cuda", 2, gpus=4) == ["cuda:0", "cuda:1"]
    assert device_slots("cuda", 2, gpus=1) == ["cuda", "cuda"]  # one GPU: all share it
    assert device_slots("cuda:1", 2, gpus=4) == ["cuda:1", "cuda:1"]  # a GPU named: that one
    assert device_slots("cpu", 2) == ["cpu", "cpu"]


def test_a_worker_runs_its_jobs_on_the_device_it_took(monkeypatch):
    import queue

    import apps.render.runner as runner

    slots = queue.Queue()
    slots.put("cuda:1")
    monkeypatch.setattr(runner, "_WORKER_DEVICE", None)
    monkeypatch.setattr(runner.signal, "signal", lambda *a: None)  # the test process keeps its Ctrl-C
    runner._init_worker(None, slots)
    assert runner._WORKER_DEVICE == "cuda:1" and slots.empty()
    payload = {"id": "m", "medium": "music", "read": False, "source": None,
               "args": {"emotion": "sad", "output": "/tmp/affect-slot-test/m.mid", "device": "cuda"}}
    assert runner._job(payload).device == "cuda:1"


def test_batches_take_jobs_of_one_medium_and_shape_and_leave_work_for_free_workers(tmp_path):
    from apps.render.runner import companions

    lines = [f"  - {{id: s{i}, medium: speech, input: {CARD if i % 2 else CARD2}, emotion: sad, output: s{i}.wav}}"
             for i in range(6)]
    lines += [f"  - {{id: m{i}, medium: music, emotion: sad, output: m{i}.mid}}" for i in range(2)]
    items = load_jobfile(_write(tmp_path, "jobs:\n" + "\n".join(lines) + "\n"), tmp_path / "out")
    first, rest = items[0], items[1:]
    picked = companions(first, rest, batch_size=3, free=1)
    assert [p.id for p in picked] == ["s2", "s4"]  # the same recording first, music never
    assert [p.id for p in companions(first, rest, batch_size=8, free=2)] == ["s2", "s4"]  # 6 over 2 workers
    assert companions(first, rest, batch_size=1, free=1) == []
