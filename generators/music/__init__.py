"""Emotion-conditioned symbolic music: a piano-roll diffusion model conditioned on musical
attributes steered by the shared emotion space, with MIDI and soundfont-rendered audio out."""

from generators.music.pipeline_music import MusicOutput, MusicPipeline, load_seed_midi
from generators.music.representation import ATTRIBUTES, ROLL_ATTRIBUTES, Note

__all__ = [
    "ATTRIBUTES",
    "ROLL_ATTRIBUTES",
    "MusicOutput",
    "MusicPipeline",
    "Note",
    "load_seed_midi",
]
