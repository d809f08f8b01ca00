"""Tiny seeded music components for fast tests."""

import numpy as np
import pytest
import torch

from generators.music.mapping import AttributeSpace, default_direction_model
from generators.music.modeling_music import build_unet
from generators.music.pipeline_music import MusicPipeline, make_scheduler
from generators.music.representation import ROLL_ATTRIBUTES


def fake_space() -> AttributeSpace:
    """Attribute statistics like the corpus's (medians and spreads rounded from the real cache)."""
    rng = np.random.default_rng(0)
    typical = np.array([0.74, 0.82, 4.25, 4.5, 71.7, 10.0, 2.2, 0.9, 0.28, 1.0])
    spread = np.array([0.0, 0.1, 3.9, 2.4, 6.5, 4.4, 0.7, 1.0, 0.37, 0.05])
    a = typical + rng.normal(0, 1, (400, len(ROLL_ATTRIBUTES))) * spread
    a[:, 0] = rng.random(400) < 0.74
    a[:270, 3] = 0.0  # most segments unaccompanied, as in the corpus (68%)
    return AttributeSpace.from_corpus(np.abs(a))


@pytest.fixture(scope="session")
def space():
    return fake_space()


@pytest.fixture()
def tiny_pipe(space):
    torch.manual_seed(0)
    pipe = MusicPipeline(unet=build_unet((8, 16), 1, 4), scheduler=make_scheduler())
    pipe.set_mapping(space, default_direction_model(space))
    pipe.set_progress_bar_config(disable=True)
    return pipe
