"""Emotion recognizers: read an emotion (valence, arousal, category) back from a medium."""
