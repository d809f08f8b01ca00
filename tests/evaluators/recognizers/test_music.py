"""The symbolic music emotion recognizer: features measured by hand, directions, errors."""

import doctest

import mido
import numpy as np
import pretty_midi
import pytest

from conditioning import CATEGORIES, EmotionSpec
from evaluators.recognizers import music
from evaluators.recognizers.music import MusicEmotionRecognizer

C_MAJOR_CHORDS = [[60, 64, 67], [60, 65, 69], [59, 62, 67], [60, 64, 67]]  # I IV V I
A_MINOR_CHORDS = [
    [33, 40, 45, 48],
    [38, 41, 45, 50],
    [40, 44, 47, 52],
    [33, 40, 45, 48],
]  # i iv V i


def write_midi(path, notes, tempo=120.0, velocity=80, resolution=480, drum=False):
    """notes: (start_s, end_s, pitch) triples on one instrument."""
    pm = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=0, is_drum=drum)
    inst.notes = [pretty_midi.Note(velocity, p, s, e) for s, e, p in notes]
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def bright_piece(path):
    """C major, 150 BPM, detached 8th-note scale and arpeggios over I-IV-V-I, loud."""
    beat = 60 / 150
    melody = [72, 74, 76, 77, 79, 81, 83, 84, 84, 81, 77, 72, 74, 79, 83, 86]
    melody += [84, 79, 76, 72, 76, 79, 84, 88, 86, 83, 79, 74, 72, 76, 79, 84]
    notes = [(i * beat / 2, i * beat / 2 + 0.3 * beat, p) for i, p in enumerate(melody)]
    for bar, chord in enumerate(C_MAJOR_CHORDS):
        notes += [(bar * 4 * beat, bar * 4 * beat + 0.5 * beat, p) for p in chord]
    return write_midi(path, notes, tempo=150, velocity=100)


def dark_piece(path):
    """A minor, 60 BPM, legato quarter notes over i-iv-V-i in a low register, soft."""
    melody = [57, 60, 59, 57, 53, 52, 50, 53, 52, 56, 59, 56, 57, 52, 48, 45]
    notes = [(i, i + 1.0, p) for i, p in enumerate(melody)]
    for bar, chord in enumerate(A_MINOR_CHORDS):
        notes += [(bar * 4.0, bar * 4.0 + 4.0, p) for p in chord]
    return write_midi(path, notes, tempo=60, velocity=45)


def test_bright_major_piece_reads_more_positive_and_aroused_than_dark_minor_piece(tmp_path):
    recognizer = MusicEmotionRecognizer()
    bright = recognizer(bright_piece(tmp_path / "bright.mid"))
    dark = recognizer(dark_piece(tmp_path / "dark.mid"))
    assert bright.features.key_name == "C major" and bright.features.mode_major == 1.0
    assert dark.features.key_name == "a minor" and dark.features.mode_major == 0.0
    assert bright.valence > dark.valence
    assert bright.arousal > dark.arousal
    assert bright.valence > 0 > dark.valence and bright.arousal > 0 > dark.arousal
    assert bright.category in {"happy", "surprised"}
    assert dark.category in {"sad", "calm", "fearful"}
    assert bright.features.mean_pitch > dark.features.mean_pitch
    assert bright.features.articulation < dark.features.articulation == pytest.approx(1.0)


def test_tempo_and_note_density_are_read_from_the_file(tmp_path):
    # 8 notes of 0.25 s back to back: 2 s, 4 onsets per second; 0.25 s = 300 ticks at 150 BPM.
    path = write_midi(
        tmp_path / "eight.mid", [(i * 0.25, (i + 1) * 0.25, 60 + i) for i in range(8)], tempo=150
    )
    f = MusicEmotionRecognizer().features(path)
    assert f.tempo_bpm == pytest.approx(150.0, abs=1e-3)
    assert f.duration_s == pytest.approx(2.0, abs=1e-6)
    assert f.note_density == pytest.approx(4.0, abs=1e-5)
    assert f.mean_velocity == 80
    assert f.articulation == pytest.approx(1.0)
    assert f.dissonance == 0.0  # one note at a time: no simultaneous pairs


def test_file_without_tempo_event_uses_pretty_midi_estimate(tmp_path):
    mf = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for i in range(12):  # 8th notes at MIDI's default 120 BPM, no set_tempo message
        track.append(
            mido.Message("note_on", note=60 + i % 5, velocity=90, time=0 if i == 0 else 120)
        )
        track.append(mido.Message("note_off", note=60 + i % 5, velocity=0, time=120))
    mf.tracks.append(track)
    mf.save(tmp_path / "no_tempo.mid")
    f = MusicEmotionRecognizer().features(tmp_path / "no_tempo.mid")
    assert f.tempo_bpm == pytest.approx(
        pretty_midi.PrettyMIDI(str(tmp_path / "no_tempo.mid")).estimate_tempo()
    )


def test_articulation_and_dissonance_measured_by_hand(tmp_path):
    staccato = [(i * 0.5, i * 0.5 + 0.25, 60) for i in range(8)]  # half of each gap sounds
    f = MusicEmotionRecognizer().features(write_midi(tmp_path / "stacc.mid", staccato))
    assert f.articulation == pytest.approx(0.5, abs=1e-3)
    # C-E-G for 2 s then C-C#-F# (pairs: m2, tritone, P4 -> 2/3 dissonant) for 2 s
    chords = [(0.0, 2.0, p) for p in (60, 64, 67)] + [(2.0, 4.0, p) for p in (60, 61, 66)]
    f = MusicEmotionRecognizer().features(write_midi(tmp_path / "chords.mid", chords))
    assert f.dissonance == pytest.approx(0.5 * 0 + 0.5 * 2 / 3, abs=1e-6)
    # a legato line whose notes overlap by 30 ms (E into F) is sampled mid-16th: no m2 counted
    line = [(i * 0.5, i * 0.5 + 0.53, p) for i, p in enumerate([60, 62, 64, 65, 67])]
    f = MusicEmotionRecognizer().features(write_midi(tmp_path / "legato.mid", line))
    assert f.dissonance == 0.0


def cue_piece(path, third=64, sixth=69, tempo=120.0, velocity=80):
    """A tonic-dominant tune in C whose mode (third, sixth), tempo and loudness can be set."""
    beat = 60 / tempo
    melody = [60, 62, third, 65, 67, sixth, 67, 65, third, 62, 60, 67, third, 60, 62, 60]
    notes = [(i * beat, (i + 0.9) * beat, p) for i, p in enumerate(melody)]
    notes += [(b * 4 * beat, (b + 1) * 4 * beat, p) for b in range(4) for p in (48, third - 12, 55)]
    return write_midi(path, notes, tempo=tempo, velocity=velocity)


@pytest.mark.parametrize(
    "changed,valence_up,arousal_up",
    [
        ({"third": 63, "sixth": 68}, True, None),  # parallel minor: valence down, arousal alike
        ({"velocity": 40}, None, True),  # softer: arousal down, valence alike
        ({"tempo": 60.0}, True, True),  # slower: both down
    ],
)
def test_one_cue_at_a_time_moves_the_reading_the_way_the_literature_says(
    tmp_path, changed, valence_up, arousal_up
):
    recognizer = MusicEmotionRecognizer()
    base = recognizer(cue_piece(tmp_path / "base.mid"))
    other = recognizer(cue_piece(tmp_path / "other.mid", **changed))
    assert base.features.key_name == "C major"
    assert other.features.key_name == ("c minor" if "third" in changed else "C major")
    for attr, up in (("valence", valence_up), ("arousal", arousal_up)):
        diff = getattr(base, attr) - getattr(other, attr)
        assert diff > 0.05 if up else abs(diff) < 0.05, (attr, diff)


def test_probabilities_cover_the_vocabulary_and_spec_follows_them(tmp_path):
    recognizer = MusicEmotionRecognizer()
    for reading in (
        recognizer(bright_piece(tmp_path / "bright.mid")),
        recognizer(dark_piece(tmp_path / "dark.mid")),
    ):
        probs = reading.probabilities
        assert list(probs) == list(CATEGORIES)
        assert sum(probs.values()) == pytest.approx(1.0)
        assert all(0.0 <= p <= 1.0 for p in probs.values())
        assert reading.category == max(probs, key=probs.get)
        spec = reading.as_spec()
        assert isinstance(spec, EmotionSpec)
        assert spec.dominant == reading.category
        # contributions are the probabilities (dust below 0.01 dropped); intensity 1 - p(neutral)
        kept = np.array(
            [probs[k] if probs[k] >= 0.01 and k != "neutral" else 0.0 for k in CATEGORIES]
        )
        assert np.allclose(spec.contributions(), kept, atol=1e-6)
        assert np.sign(spec.vad[0]) == np.sign(reading.valence)


def test_accepts_a_loaded_pretty_midi_and_matches_the_file(tmp_path):
    path = bright_piece(tmp_path / "bright.mid")
    recognizer = MusicEmotionRecognizer()
    from_file, from_object = recognizer(path), recognizer(pretty_midi.PrettyMIDI(str(path)))
    assert from_object.valence == pytest.approx(from_file.valence)
    assert from_object.arousal == pytest.approx(from_file.arousal)


def test_bad_inputs_raise_value_error(tmp_path):
    recognizer = MusicEmotionRecognizer()
    with pytest.raises(ValueError, match="does not exist"):
        recognizer(tmp_path / "missing.mid")
    fake = tmp_path / "notes.mid"
    fake.write_text("these are not the notes you are looking for\n")
    with pytest.raises(ValueError, match="not a readable standard MIDI file"):
        recognizer(fake)
    with pytest.raises(ValueError, match="has no notes"):
        recognizer(write_midi(tmp_path / "empty.mid", []))
    with pytest.raises(ValueError, match="has no notes"):  # drums only: no pitched notes
        recognizer(write_midi(tmp_path / "drums.mid", [(0, 0.5, 36), (0.5, 1, 38)], drum=True))
    with pytest.raises(ValueError, match="standard MIDI file"):
        recognizer(42)


def test_module_docstring_example_runs():
    result = doctest.testmod(music)
    assert result.attempted > 0 and result.failed == 0
