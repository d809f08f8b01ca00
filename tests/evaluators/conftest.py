"""The tiny music pipeline as the closed loop calls a generator (fast; its quality is not the
point)."""

import pytest


@pytest.fixture
def tiny_music(tiny_music_pipeline):
    return lambda **kw: tiny_music_pipeline(num_inference_steps=2, **kw)
