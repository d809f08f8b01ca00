"""A tiny seeded music generator for the closed-loop tests (fast; its quality is not the point)."""

import numpy as np
import pytest
import torch


@pytest.fixture
def tiny_music():
    from generators.music.mapping import AttributeSpace, default_direction_model
    from generators.music.modeling_music import build_unet
    from generators.music.pipeline_music import MusicPipeline, make_scheduler

    rng = np.random.default_rng(0)
    a = np.abs(rng.normal([0.7, 0.8, 4, 0, 70, 10, 2, 1, 0.2, 1], 0.5, (100, 10)))
    a[:, 0] = rng.random(100) < 0.7
    a[:40, 3] = 5.0
    space = AttributeSpace.from_corpus(a)
    torch.manual_seed(0)
    pipe = MusicPipeline(unet=build_unet((8, 16), 1, 4), scheduler=make_scheduler())
    pipe.set_mapping(space, default_direction_model(space))
    pipe.set_progress_bar_config(disable=True)
    return lambda **kw: pipe(num_inference_steps=2, **kw)
