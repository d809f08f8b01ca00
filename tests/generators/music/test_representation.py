"""Piano-roll encoding and the attributes computed from it."""

import numpy as np
import pytest

from generators.music.representation import (
    KK_MAJOR,
    KK_MINOR,
    Note,
    compute_attributes,
    key_correlations,
    notes_to_roll,
    roll_to_notes,
)


def test_notes_roll_round_trip_keeps_repeated_notes_apart():
    notes = [
        Note(0, 4, 60, 0),
        Note(4, 4, 60, 0),
        Note(8, 2, 64, 0),
        Note(0, 16, 48, 1),
        Note(0, 16, 55, 1),
    ]
    roll = notes_to_roll(notes, 16)
    assert roll.shape == (4, 64, 16)
    assert sorted(roll_to_notes(roll)) == sorted(notes)


def test_out_of_range_pitches_are_dropped():
    roll = notes_to_roll([Note(0, 4, 20, 0), Note(0, 4, 120, 0)], 16)
    assert roll.sum() == 0


def test_attributes_of_a_c_major_scale_hand_computed():
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = [Note(4 * i, 4, p, 0) for i, p in enumerate(scale)]  # quarter notes, 2 bars
    notes.append(Note(0, 32, 48, 1))
    a = compute_attributes(notes, 2)
    assert a["major"] == 1.0
    assert a["density"] == 4.0  # 8 onsets over 2 bars
    assert a["acc_density"] == 0.5
    assert a["register"] == pytest.approx(np.mean(scale))
    assert a["pitch_range"] == 12
    assert a["interval"] == pytest.approx(12 / 7)
    assert a["note_value"] == 1.0
    assert a["syncopation"] == 0.0
    assert a["articulation"] == 1.0


def test_a_minor_profile_is_read_as_minor_in_c_relative_terms():
    # Pitch classes of C minor weighted like the minor profile: minor beats major at tonic C.
    corr = key_correlations(np.array(KK_MINOR))
    assert corr[1, 0] == pytest.approx(1.0)
    assert corr[1, 0] > corr[0, 0]
    corr = key_correlations(np.roll(KK_MAJOR, 7))  # G major
    assert np.unravel_index(np.argmax(corr), corr.shape) == (0, 7)


def test_syncopation_and_articulation():
    notes = [Note(2, 1, 60, 0), Note(6, 1, 62, 0), Note(10, 1, 64, 0), Note(12, 4, 65, 0)]
    a = compute_attributes(notes, 1)
    assert a["syncopation"] == pytest.approx(0.75)
    # 1-step notes; gaps to the next onset 4, 4 and 2 steps: (1/4 + 1/4 + 1/2) / 3
    assert a["articulation"] == pytest.approx(1 / 3)


def test_piece_attributes_undo_the_transposition():
    from generators.music.pipeline_music import piece_attributes

    c_minor = [Note(4 * i, 4, p, 0) for i, p in enumerate([60, 63, 67, 72, 67, 63, 62, 60])]
    d_minor = [Note(n.start, n.length, n.pitch + 2, 0) for n in c_minor]
    assert piece_attributes(d_minor, 2, 2) == compute_attributes(c_minor, 2)
    assert piece_attributes(d_minor, 2, 2)["major"] == 0.0
