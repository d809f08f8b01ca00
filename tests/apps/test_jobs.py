"""The job layer: one validation per rule (a JobError line before any model loads), provenance,
a chained speech -> face job, and one shared Models used from two threads."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from apps.jobs import FaceJob, JobError, Models, MusicJob, ReadJob, SpeechJob, run

CARD = Path("/usr/share/pocketsphinx/test/data/cards/001.wav")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")


@pytest.fixture(scope="module")
def models():
    return Models()


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("jobs") / "portrait.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


# -- validation: one JobError line, nothing loaded, nothing written --------------------------------
def _refused(job, match: str, models: Models) -> str:
    with pytest.raises(JobError, match=match) as info:
        run(job, models)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def test_speech_job_refuses_bad_input_before_loading(tmp_path):
    models = Models()
    out = tmp_path / "x.wav"
    _refused(SpeechJob(CARD, "blorp", output=out), "blorp", models)
    _refused(SpeechJob(CARD, "angry", output=tmp_path / "x.mp3"), r"-o must name a \.wav/\.flac/\.ogg", models)
    _refused(SpeechJob(tmp_path / "missing.wav", "angry", output=out), "missing.wav", models)
    _refused(SpeechJob(CARD, "angry", output=out, intensity=2.0), r"intensity must be a number in \[0, 1.5\]",
             models)
    _refused(SpeechJob(CARD, "angry", output=out, steps=0), r"num_inference_steps must be in \[1, 200\]", models)
    _refused(SpeechJob(CARD, "angry", output=out, vocoder="griffin"), "vocoder must be one of hifigan, fast, world, got 'griffin'", models)
    _refused(SpeechJob(CARD, "angry", output=out, device="cuda:7"), "cuda", models)
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 50)
    _refused(SpeechJob(text, "angry", output=out), "notes.wav", models)
    assert models.loaded() == [] and not out.exists()


def test_music_job_refuses_bad_input_before_loading(tmp_path):
    models = Models()
    out = tmp_path / "x.mid"
    _refused(MusicJob("sad", out, bars=0), r"--bars must be in \[1, 64\]", models)
    _refused(MusicJob("sad", out, fixed={"tempo": 500.0}), r"tempo must be in \[", models)
    _refused(MusicJob("sad", out, fixed={"loudness": 1.0}), "unknown attribute 'loudness'", models)
    _refused(MusicJob("sad", tmp_path / "x.wav"), r"-o must name a \.mid file", models)
    _refused(MusicJob("sad", out, wav=tmp_path / "x.mp3"), r"--wav must name a \.wav file", models)
    _refused(MusicJob("sad", out, tonic="H"), "tonic must be a note name", models)
    _refused(MusicJob("sad", out, seed=-1), "seed must be a whole number", models)
    _refused(MusicJob("sad -> happy over 3 lightyears", out), "lightyears", models)
    assert models.loaded() == [] and not out.exists()


def test_face_job_refuses_bad_input_before_loading(tmp_path, portrait):
    models = Models()
    out = tmp_path / "x.mp4"
    _refused(FaceJob(portrait, "sad", out), "--audio is required", models)
    _refused(FaceJob(portrait, "sad -> happy over 3 s", tmp_path / "x.png"), "a .png still holds one expression",
             models)
    _refused(FaceJob(portrait, "sad", out, audio=CARD, face_resolution=32), r"--face-resolution must be in",
             models)
    _refused(FaceJob(portrait, "sad", out, audio=CARD, noise_scale=0.0), r"--noise-scale must be in", models)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    _refused(FaceJob(blank, "sad", out, audio=CARD), "no face", models)
    # a chained speech job is validated with the face job, before anything runs
    _refused(FaceJob(portrait, "sad", out, audio=SpeechJob(CARD, "blorp")), "blorp", models)
    assert models.loaded() == [] and not out.exists()


def test_read_job_refuses_bad_input(tmp_path):
    models = Models()
    _refused(ReadJob([tmp_path / "x.txt"]), "cannot read", models)
    _refused(ReadJob([tmp_path / "x.wav"]), "no such file", models)
    _refused(ReadJob([CARD], recognizer="music-features-v1"), "cannot read a recording", models)
    _refused(ReadJob([CARD], reference=[tmp_path / "n.mid"]), "no such file", models)
    assert models.loaded() == []


# -- provenance ----------------------------------------------------------------------------------
def test_music_job_provenance_records_how_it_was_made(tmp_path, models):
    out = tmp_path / "calm.mid"
    result = run(MusicJob("calm@0.6", out, bars=2, seed=5, fixed={"tempo": 80.0}, provenance=True), models)
    record_path = tmp_path / "calm.provenance.json"
    assert result.files == [out, record_path] and out.is_file()
    record = json.loads(record_path.read_text())
    assert record == json.loads(json.dumps(result.provenance, default=str))
    assert record["job"] == "music" and record["seed"] == 5
    assert record["emotion"]["spec"] == "calm@0.6" and record["emotion"]["input"] == "calm@0.6"
    assert record["options"]["bars"] == 2 and record["options"]["fixed"] == {"tempo": 80.0}
    assert record["options"]["steps"] == 12 and record["options"]["guidance"] == 2.0
    (model,) = record["models"]
    assert model["name"] == "music-default" and model["class"] == "MusicPipeline"
    assert len(model["weights_sha256"]) == 16 and model["load_s"] >= 0
    assert record["package"]["name"] == "affectstudio" and record["package"]["version"]
    assert record["timings_s"]["generate_s"] > 0
    import hashlib

    assert record["outputs"][0]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()[:16]


def test_weights_hash_tells_checkpoints_apart(tmp_path, models):
    """The same weights saved elsewhere hash alike; changed weights do not."""
    import torch

    with models.use("music") as pipe:
        pipe.save_pretrained(tmp_path / "copy")
        changed = tmp_path / "changed"
        pipe.save_pretrained(changed)
    from generators.music import MusicPipeline

    other = MusicPipeline.from_pretrained(changed)
    with torch.no_grad():
        next(other.unet.parameters()).add_(0.01)
    other.save_pretrained(changed)
    hashes = {}
    for name in (None, str(tmp_path / "copy"), str(changed)):
        with models.use("music", name):
            hashes[name] = models.info("music", name)["weights_sha256"]
    assert hashes[None] == hashes[str(tmp_path / "copy")] != hashes[str(changed)]


# -- a chained job: convert, then animate the converted voice -------------------------------------
def test_face_job_speaks_the_speech_job_it_chains(tmp_path, models, portrait):
    voice = SpeechJob(CARD, "angry@0.8", output=tmp_path / "angry.wav", seed=1)
    video = tmp_path / "angry.mp4"
    result = run(FaceJob(portrait, "angry@0.8", video, audio=voice, face_resolution=96, provenance=True), models)
    assert result.files == [tmp_path / "angry.wav", video, tmp_path / "angry.provenance.json"]
    speech, sr = sf.read(tmp_path / "angry.wav", dtype="float32")
    # the face speaks the converted voice (both at 22,050 Hz): the same samples, to the wav's 16 bits
    assert result.output.sample_rate == sr and len(result.output.audio) == len(speech)
    assert np.abs(result.output.audio - speech).max() < 1e-4
    assert abs(result.output.duration - len(speech) / sr) < 0.05
    alone = run(SpeechJob(CARD, "angry@0.8", seed=1), models)  # the same conversion, run alone
    assert np.array_equal(alone.output.audio, result.output.audio)
    source, _ = sf.read(CARD, dtype="float32")
    assert len(source) != len(speech) or not np.allclose(source, speech)  # not the source voice
    record = result.provenance
    assert record["speech"]["emotion"]["spec"] == "angry@0.8" and record["speech"]["job"] == "speech"
    assert record["options"]["audio"] == {"job": "speech", "output": str(tmp_path / "angry.wav")}
    assert [m["class"] for m in record["models"]] == ["TalkingHeadPipeline"]
    assert record["speech"]["models"][0]["class"] == "EmotionVoiceConversionPipeline"


# -- one Models shared by two threads --------------------------------------------------------------
def test_two_threads_on_one_models_match_one_after_the_other(tmp_path):
    jobs = [MusicJob("happy@0.9", tmp_path / "a.mid", bars=2, seed=1),
            MusicJob("sad@0.9", tmp_path / "b.mid", bars=2, seed=2),
            SpeechJob(CARD, "sad@1", seed=3),
            SpeechJob(CARD, "surprised@1", seed=4)]

    def outputs(results):
        return [r.output.midi if hasattr(r.output, "midi") else r.output.audio for r in results]

    models = Models()
    sequential = outputs([run(j, models) for j in jobs])
    for j in jobs[:2]:
        Path(j.output).unlink()
    shared, results, errors = Models(), [None] * len(jobs), []

    def worker(indices):
        try:
            for i in indices:
                results[i] = run(jobs[i], shared)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(idx,)) for idx in ([0, 2], [1, 3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    parallel = outputs(results)
    assert parallel[0] == sequential[0] and parallel[1] == sequential[1]  # MIDI bytes
    assert np.array_equal(parallel[2], sequential[2]) and np.array_equal(parallel[3], sequential[3])
    assert sorted(k[0] for k in shared.loaded()) == ["music", "speech"]  # each loaded once


def test_a_batch_that_fails_as_a_whole_runs_its_jobs_one_at_a_time(tmp_path, monkeypatch):
    """Out of memory in the batched denoiser pass (simulated): the jobs are run alone, and each
    gets its own result; one job in a batch fails alone."""
    from apps.jobs import MusicJob, run_batch
    from generators.music.pipeline_music import MusicPipeline

    real = MusicPipeline._denoise_states

    def no_room_for_two(self, states):
        if len(states) > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, states)

    monkeypatch.setattr(MusicPipeline, "_denoise_states", no_room_for_two)
    jobs = [MusicJob(e, tmp_path / f"{i}.mid", bars=2, steps=2, seed=i) for i, e in enumerate(["sad", "happy"])]
    jobs.append(MusicJob("sad", tmp_path / "bad.mid", bars=99))
    out = run_batch(jobs, Models())
    assert [type(r).__name__ for r in out] == ["JobResult", "JobResult", "JobError"]
    assert all((tmp_path / f"{i}.mid").read_bytes().startswith(b"MThd") for i in range(2))
    assert "batch_size" not in out[0].provenance["timings_s"]  # it ran alone
    assert not (tmp_path / "bad.mid").exists()
