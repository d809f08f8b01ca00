"""MIDI -> audio: the rendered audio keeps the MIDI file's clock (onsets where the file puts them,
the file's length plus the stated tail), whatever the tempo, tempo changes or file format."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from generators.music.render import render_audio


def midi_length_s(p):
    return mido.MidiFile(str(p)).length

SR = 44100
TAIL_S = 1.5


def _write(path, fmt: int, tempi: list[tuple[int, float]], beats: list[float], tpb: int = 480):
    """A piano part of short notes at ``beats`` (in quarter notes), tempo changes at
    ``tempi`` [(beat, bpm)]. Format 0 puts everything on one track; format 1 puts the tempo map on a
    conductor track and the notes on a second."""
    tempo = [(int(b * tpb), 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
             for b, bpm in tempi]
    notes = [(0, 1, mido.Message("program_change", channel=0, program=0))]
    for i, b in enumerate(beats):
        pitch = 60 + 2 * (i % 6)
        start = int(b * tpb)
        notes.append((start, 3, mido.Message("note_on", channel=0, note=pitch, velocity=100)))
        notes.append((start + tpb // 4, 2, mido.Message("note_off", channel=0, note=pitch, velocity=0)))

    def track(events):
        trk, now = mido.MidiTrack(), 0
        for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
            trk.append(msg.copy(time=tick - now))
            now = tick
        return trk

    mid = mido.MidiFile(type=fmt, ticks_per_beat=tpb)
    if fmt == 0:
        mid.tracks.append(track(tempo + notes))
    else:
        mid.tracks.append(track(tempo))
        mid.tracks.append(track(notes))
    mid.save(str(path))


def _midi_onsets(path) -> np.ndarray:
    """Note-on times in seconds, as mido plays the file (its own tempo-map arithmetic)."""
    t, out = 0.0, []
    for msg in mido.MidiFile(str(path)):
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            out.append(t)
    return np.array(out)


def _audio_onsets(audio: np.ndarray, sr: int) -> np.ndarray:
    """Onsets read off the audio: where the short-time level (3 ms windows, 0.7 ms hop) starts a
    rise of more than 9 dB within 6 ms, at most one per 100 ms."""
    x = audio.mean(axis=1)
    win, hop, span = 128, 32, 8
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop]
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    rise = level[span:] - level[:-span]
    found, last = [], -1.0
    for j in np.where(rise > 9.0)[0]:
        t = (j * hop + win) / sr  # the first new samples enter at the end of window j
        if t - last >= 0.1:
            found.append(t)
        last = t if t - last >= 0.1 else last
    return np.array(found)


CASES = {
    "60 BPM, format 0": (0, [(0, 60.0)], [float(b) for b in range(8)]),
    "60 BPM, format 1": (1, [(0, 60.0)], [float(b) for b in range(8)]),
    "120 BPM, format 1": (1, [(0, 120.0)], [float(b) for b in range(8)]),
    "70 BPM in eighths, format 0": (0, [(0, 70.0)], [b / 2 for b in range(12)]),
    "90 -> 150 BPM at beat 4, format 1": (1, [(0, 90.0), (4, 150.0)], [float(b) for b in range(10)]),
    "140 -> 50 BPM at beat 3, format 0": (0, [(0, 140.0), (3, 50.0)], [float(b) for b in range(6)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_audio_keeps_the_midi_clock(name, tmp_path):
    fmt, tempi, beats = CASES[name]
    path = tmp_path / "clock.mid"
    _write(path, fmt, tempi, beats)
    audio = render_audio(path, sample_rate=SR, tail_s=TAIL_S)
    expected = _midi_onsets(path)
    found = _audio_onsets(audio, SR)
    assert len(found) == len(expected), f"{name}: {len(found)} onsets heard, {len(expected)} in the MIDI"
    err_ms = np.abs(found - expected) * 1000
    assert err_ms.max() <= 20.0, f"{name}: onsets off by up to {err_ms.max():.1f} ms: {found} vs {expected}"
    length = midi_length_s(path)
    assert abs(len(audio) / SR - (length + TAIL_S)) <= 0.02, (
        f"{name}: {len(audio) / SR:.3f} s of audio for {length:.3f} s of MIDI + {TAIL_S} s tail")


def test_generated_piece_renders_at_its_length(tmp_path):
    """A piece as the music pipeline writes it (a conductor track with a tempo per bar): the audio
    lasts the file's length plus the tail, and its first note sounds at 0."""
    from generators.music.render import INSTRUMENTATION, write_midi
    from generators.music.representation import STEPS_PER_BAR, Note

    notes = [Note(pitch=60 + (b % 5), start=b * STEPS_PER_BAR, length=4, track=0) for b in range(4)]
    path = tmp_path / "piece.mid"
    write_midi(path, notes, tempo_per_bar=[70.0, 70.0, 100.0, 100.0], velocity_per_bar=[80.0] * 4,
               articulation_per_bar=[0.9] * 4, instrumentation=INSTRUMENTATION["neutral"])
    # 4 bars of 4/4: two at 70 BPM, two at 100 BPM
    assert midi_length_s(path) == pytest.approx(8 * 60 / 70 + 8 * 60 / 100, abs=1e-4)  # tempo is stored in whole microseconds
    audio = render_audio(path, sample_rate=SR, tail_s=TAIL_S)
    assert len(audio) / SR == pytest.approx(midi_length_s(path) + TAIL_S, abs=0.02)
    found = _audio_onsets(audio, SR)
    bars = np.array([0.0, 4 * 60 / 70, 8 * 60 / 70, 8 * 60 / 70 + 4 * 60 / 100])
    assert len(found) == 4 and np.abs(found - bars).max() <= 0.02, found


def test_a_render_does_not_depend_on_the_one_before(tmp_path):
    """The synthesizer is shared within a process: what it played last (strings still sounding at
    the end of the tail) must not leak into the next render (a batch renders pieces in any order,
    on any worker)."""
    from generators.music.render import INSTRUMENTATION, write_midi
    from generators.music.representation import STEPS_PER_BAR, Note

    def piece(path, instrumentation, pitches):
        notes = [Note(pitch=p, start=i * STEPS_PER_BAR, length=STEPS_PER_BAR, track=t)
                 for i, p in enumerate(pitches) for t in (0, 1)]
        write_midi(path, notes, tempo_per_bar=[90.0] * len(pitches), velocity_per_bar=[90.0] * len(pitches),
                   articulation_per_bar=[1.0] * len(pitches), instrumentation=instrumentation)

    first, other = tmp_path / "first.mid", tmp_path / "other.mid"
    piece(first, INSTRUMENTATION["sad"], [57, 60, 64])
    piece(other, INSTRUMENTATION["calm"], [62, 65, 69, 72])
    alone = render_audio(first, sample_rate=SR)
    again = render_audio(first, sample_rate=SR)
    render_audio(other, sample_rate=SR)
    after_other = render_audio(first, sample_rate=SR)
    assert np.array_equal(alone, again) and np.array_equal(alone, after_other)
