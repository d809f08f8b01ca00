"""Standard MIDI out, and audio rendered with a General MIDI soundfont.

MIDI is written with ``mido`` (format 1: a conductor track with the time signature, key
signature and one tempo per bar, then one track per part with its program and velocities).
Audio is rendered by ``tinysoundfont`` (a self-contained SoundFont synthesizer, PyPI) with the
FluidR3 General MIDI soundfont of Debian's ``fluid-soundfont-gm`` package, which the setup command
installs; ``AFFECT_SOUNDFONT`` names another ``.sf2``. Both files are written atomically.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from conditioning.io import atomic_write
from generators.music.representation import STEPS_PER_BAR, STEPS_PER_BEAT, Note

TICKS_PER_BEAT = 480
TICKS_PER_STEP = TICKS_PER_BEAT // STEPS_PER_BEAT
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)
KEY_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class Instrumentation:
    """General MIDI programs (0-based) of the two parts and a name for them."""

    melody: int
    accompaniment: int
    name: str


#: Instrumentation by the piece's dominant emotion: timbre is one of the cues listeners use
#: (bright/soft timbres for happiness and tenderness, dark for sadness, harsh for anger; Juslin 2001,
#: Eerola et al. 2013).
INSTRUMENTATION = {
    "neutral": Instrumentation(0, 0, "piano"),
    "happy": Instrumentation(73, 0, "flute and piano"),
    "sad": Instrumentation(42, 48, "cello and strings"),
    "angry": Instrumentation(61, 30, "brass and distortion guitar"),
    "fearful": Instrumentation(40, 44, "violin and tremolo strings"),
    "surprised": Instrumentation(11, 45, "vibraphone and pizzicato strings"),
    "calm": Instrumentation(46, 89, "harp and warm pad"),
    "disgusted": Instrumentation(68, 32, "oboe and acoustic bass"),
    "contempt": Instrumentation(65, 0, "alto sax and piano"),
}


def find_soundfont() -> Path:
    env = os.environ.get("AFFECT_SOUNDFONT")
    for cand in ([env] if env else []) + list(SOUNDFONT_CANDIDATES):
        if cand and Path(cand).is_file():
            return Path(cand)
    raise FileNotFoundError(
        "no General MIDI soundfont found: install Debian's fluid-soundfont-gm "
        "(the README's setup command does) or set AFFECT_SOUNDFONT to an .sf2 file"
    )


def write_midi(
    path: str | Path,
    notes: list[Note],
    *,
    tempo_per_bar: list[float],
    velocity_per_bar: list[float],
    articulation_per_bar: list[float],
    instrumentation: Instrumentation,
    tonic: int = 0,
    major: bool = True,
    num_bars: int | None = None,
) -> None:
    """Write notes (already in their final key) as a standard MIDI file.

    Velocities follow the bar's velocity with a metrical accent (downbeats louder); note lengths
    are scaled by the bar's articulation (1 legato, lower detached).
    """
    import mido

    num_bars = num_bars or len(tempo_per_bar)
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    key = KEY_NAMES[tonic % 12] + ("" if major else "m")
    if key in ("Dbm", "Abm"):  # mido knows these minor keys by their sharp names
        key = {"Dbm": "C#m", "Abm": "G#m"}[key]
    conductor.append(mido.MetaMessage("key_signature", key=key, time=0))
    last = 0
    for bar, bpm in enumerate(tempo_per_bar):
        tick = bar * STEPS_PER_BAR * TICKS_PER_STEP
        conductor.append(
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(float(bpm)), time=tick - last)
        )
        last = tick
    mid.tracks.append(conductor)
    for track, (program, name) in enumerate(
        ((instrumentation.melody, "melody"), (instrumentation.accompaniment, "accompaniment"))
    ):
        events = []  # (tick, order, message); note-offs sort before note-ons at the same tick
        for n in notes:
            if n.track != track:
                continue
            bar = min(n.start // STEPS_PER_BAR, num_bars - 1)
            accent = (
                8 if n.start % STEPS_PER_BAR == 0 else (3 if n.start % STEPS_PER_BEAT == 0 else 0)
            )
            base = velocity_per_bar[bar] - (
                6 if track == 1 else 0
            )  # accompaniment under the melody
            vel = int(np.clip(round(base + accent), 1, 127))
            start = n.start * TICKS_PER_STEP
            length = max(
                TICKS_PER_STEP // 2, int(n.length * TICKS_PER_STEP * articulation_per_bar[bar])
            )
            events.append(
                (start, 1, mido.Message("note_on", channel=track, note=n.pitch, velocity=vel))
            )
            events.append(
                (
                    start + length,
                    0,
                    mido.Message("note_off", channel=track, note=n.pitch, velocity=0),
                )
            )
        events.sort(key=lambda e: (e[0], e[1]))
        trk = mido.MidiTrack()
        trk.append(mido.MetaMessage("track_name", name=name, time=0))
        trk.append(mido.Message("program_change", channel=track, program=program, time=0))
        now = 0
        for tick, _, msg in events:
            trk.append(msg.copy(time=tick - now))
            now = tick
        end = num_bars * STEPS_PER_BAR * TICKS_PER_STEP
        trk.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
        mid.tracks.append(trk)
    with atomic_write(path, "wb") as tmp:
        mid.save(tmp)


@lru_cache(maxsize=2)
def _synth(soundfont: str, sample_rate: int):
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-3.0)
    synth.sfload(soundfont)
    return synth


#: one render at a time per process: the synthesizer (its loaded soundfont) is shared
_RENDER_LOCK = threading.Lock()


def midi_length_s(midi_path: str | Path) -> float:
    """The MIDI file's length in seconds, every tempo change counted (to its last event,
    end-of-track included)."""
    import mido

    return float(mido.MidiFile(str(midi_path)).length)


def render_audio(
    midi_path: str | Path, sample_rate: int = 44100, tail_s: float = 1.5
) -> np.ndarray:
    """Render a MIDI file to stereo float32 audio, shape (samples, 2): the file's length in
    seconds (``midi_length_s``) plus ``tail_s`` of release, with every event at its MIDI time.

    The sequencer drives the synthesizer through its callback: ``Synth.generate`` asks it how far
    to advance before each slice it renders, so the sequencer's clock moves exactly with the
    samples produced (it must not also be advanced by hand, which would double its clock).
    """
    import tinysoundfont

    total = int(np.ceil((midi_length_s(midi_path) + tail_s) * sample_rate))
    with _RENDER_LOCK:
        synth = _synth(str(find_soundfont()), sample_rate)
        # as freshly loaded, so a render never depends on the one before: the last render's voices
        # are cut (their short release is run out, unheard) and the channels reset
        synth.sounds_off()
        synth.generate_simple(max(1, sample_rate // 100))
        for soundfont in synth.soundfonts.values():
            soundfont.reset()
        seq = tinysoundfont.Sequencer(synth)
        seq.midi_load(str(midi_path))
        try:
            buffer = synth.generate(total)
        finally:
            synth.callback = None  # the next render installs its own sequencer
    audio = np.frombuffer(buffer, dtype=np.float32).reshape(-1, 2).copy()
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    if peak > 0.99:  # keep headroom instead of clipping
        audio *= 0.99 / peak
    return audio


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    with atomic_write(path, "wb") as tmp:
        sf.write(tmp, audio, sample_rate, subtype="PCM_16", format="WAV")
