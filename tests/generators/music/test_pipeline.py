"""MusicPipeline with a tiny seeded UNet: shapes, files, determinism, round trip, curves, errors."""

import io

import numpy as np
import pytest
import torch

from generators.music.pipeline_music import MusicPipeline, load_seed_midi
from generators.music.render import INSTRUMENTATION, write_midi
from generators.music.representation import Note


def gen(pipe, **kw):
    kw.setdefault("num_bars", 2)
    kw.setdefault("num_inference_steps", 2)
    kw.setdefault("output_type", "midi")
    return pipe(generator=torch.Generator().manual_seed(3), **kw)


def test_output_is_valid_midi_for_music21_and_pretty_midi(tiny_music_pipeline):
    import music21
    import pretty_midi

    out = gen(tiny_music_pipeline, emotion="sad@0.8", tonic="D")
    assert out.num_bars == 2 and out.key == "D minor" and out.audio is None
    pm = pretty_midi.PrettyMIDI(io.BytesIO(out.midi))
    assert [i.program for i in pm.instruments] == [42, 48]  # cello and strings for sadness
    assert pm.get_tempo_changes()[1][0] == pytest.approx(out.attributes["tempo"][0], abs=0.01)
    score = music21.converter.parse(out.midi, format="midi")
    assert len(score.parts) >= 1


def test_same_seed_same_piece_and_save_load_round_trip(tiny_music_pipeline, tmp_path):
    a, b = gen(tiny_music_pipeline, emotion="happy"), gen(tiny_music_pipeline, emotion="happy")
    assert a.midi == b.midi
    tiny_music_pipeline.save_pretrained(tmp_path / "ckpt")
    loaded = MusicPipeline.from_pretrained(tmp_path / "ckpt")
    loaded.set_progress_bar_config(disable=True)
    assert gen(loaded, emotion="happy").midi == a.midi


def test_audio_is_rendered_with_the_soundfont(tiny_music_pipeline, tmp_path):
    out = gen(
        tiny_music_pipeline,
        emotion="happy",
        output_type="audio",
        num_bars=1,
        tonic="C",
        fixed_attributes={"tempo": 120},
    )
    assert out.audio.ndim == 2 and out.audio.shape[1] == 2
    # 1 bar at 120 BPM = 2 s, plus the release tail.
    assert 2.0 <= len(out.audio) / out.sample_rate <= 4.0
    out.save_wav(tmp_path / "a.wav")
    import soundfile as sf

    data, sr = sf.read(tmp_path / "a.wav")
    assert sr == 44100 and data.shape == out.audio.shape


def test_curve_turns_the_attributes_bar_by_bar(tiny_music_pipeline):
    out = gen(tiny_music_pipeline, emotion="sad@1 -> happy@1 over 8 bars", num_bars=8)
    major, tempo = out.attributes["major"], out.attributes["tempo"]
    assert major[0] < 0.2 and major[-1] > 0.8
    assert np.all(np.diff(major) > 0) and np.all(np.diff(tempo) > 0)


def test_fixed_attributes_reach_the_midi(tiny_music_pipeline):
    import pretty_midi

    out = gen(tiny_music_pipeline, emotion="sad", fixed_attributes={"tempo": 150})
    pm = pretty_midi.PrettyMIDI(io.BytesIO(out.midi))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(150, abs=0.01)


def test_reharmonize_keeps_the_seed_melody(tiny_music_pipeline, tmp_path):
    melody = [Note(4 * i, 4, p, 0) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 60])]
    write_midi(
        tmp_path / "seed.mid",
        melody,
        tempo_per_bar=[100] * 2,
        velocity_per_bar=[80] * 2,
        articulation_per_bar=[1.0] * 2,
        instrumentation=INSTRUMENTATION["neutral"],
    )
    seed, tonic = load_seed_midi(tmp_path / "seed.mid")
    assert tonic == 0 and [n.pitch for n in seed] == [60, 64, 67, 72, 67, 64, 60, 60]
    out = gen(tiny_music_pipeline, emotion="calm", seed_notes=seed, seed_mode="reharmonize", tonic=0)
    got = [(n.start, n.pitch) for n in out.notes if n.track == 0]
    assert got == [(n.start, n.pitch) for n in seed]


def test_seed_midi_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_seed_midi(tmp_path / "none.mid")
    bad = tmp_path / "bad.mid"
    bad.write_text("not midi")
    with pytest.raises(ValueError, match="not a readable standard MIDI"):
        load_seed_midi(bad)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_bars": 0}, "num_bars"),
        ({"num_bars": 65}, "num_bars"),
        ({"tonic": "H"}, "tonic"),
        ({"output_type": "mp3"}, "output_type"),
        ({"emotion": "nonsense@7"}, "unknown emotion"),
        ({"guidance_scale": -1}, "guidance"),
        ({"seed_mode": "loop"}, "seed_mode"),
    ],
)
def test_bad_arguments(tiny_music_pipeline, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gen(tiny_music_pipeline, **kwargs)


def test_continue_keeps_the_seed_bars_and_writes_on(tiny_music_pipeline):
    """The seed's bar comes back note for note (both parts: the seed has no accompaniment), and
    each following bar holds notes of its own: a melody, not silence and not the seed again."""
    seed = [Note(4 * i, 4, p, 0) for i, p in enumerate([60, 64, 67, 72])]  # one bar
    out = gen(
        tiny_music_pipeline,
        emotion="happy",
        seed_notes=seed,
        seed_mode="continue",
        tonic=0,
        num_bars=3,
        cadence=False,
    )
    assert out.num_bars == 3

    def bar(b, track):  # (start within the bar, length, pitch) of the notes starting in bar b
        return sorted((n.start - 16 * b, n.length, n.pitch) for n in out.notes
                      if n.track == track and 16 * b <= n.start < 16 * (b + 1))

    assert bar(0, 0) == [(n.start, n.length, n.pitch) for n in seed] and bar(0, 1) == []
    for b in (1, 2):
        assert bar(b, 0) and bar(b, 1), f"bar {b + 1} is empty"
        assert bar(b, 0) != bar(0, 0), f"bar {b + 1} repeats the seed"
    assert max(n.start for n in out.notes) < 3 * 16
