"""Shared test settings (offline, quiet, slow tests gated by AFFECT_SLOW_TESTS=1) and the tiny
seeded pipelines every medium's tests use."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("AFFECT_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set AFFECT_SLOW_TESTS=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# -- tiny seeded pipelines: untrained and narrow, for plumbing ----------------------------------
# The speech and face denoisers' output layers start at zero (as those models are built for
# training), so what these two generate depends on neither their weights nor the emotion; a test
# that needs it seeds the output layer (tests/generators/face/test_pipeline.py's round trip).


def _tiny_denoiser(cls):
    with torch.random.fork_rng():  # seeded without moving the global generator
        torch.manual_seed(0)
        return cls(channels=16, dilations=(1, 2), emb_dim=16).eval()


@pytest.fixture(scope="session")
def tiny_speech_pipeline():
    """Emotional voice conversion with a tiny denoiser and the literature direction model."""
    from generators.speech.modeling_speech import ProsodyDenoiser
    from generators.speech.pipeline_speech import EmotionVoiceConversionPipeline, make_scheduler

    pipe = EmotionVoiceConversionPipeline(_tiny_denoiser(ProsodyDenoiser), make_scheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_face_pipeline():
    """Talking heads with a tiny motion denoiser and the rig's prototype direction model."""
    from generators.face.modeling_face import MotionDenoiser
    from generators.face.pipeline_face import TalkingHeadPipeline, make_scheduler

    pipe = TalkingHeadPipeline(_tiny_denoiser(MotionDenoiser), make_scheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def fake_music_space():
    """Attribute statistics like the corpus's (medians and spreads rounded from the real cache)."""
    from generators.music.mapping import AttributeSpace
    from generators.music.representation import ROLL_ATTRIBUTES

    rng = np.random.default_rng(0)
    typical = np.array([0.74, 0.82, 4.25, 4.5, 71.7, 10.0, 2.2, 0.9, 0.28, 1.0])
    spread = np.array([0.0, 0.1, 3.9, 2.4, 6.5, 4.4, 0.7, 1.0, 0.37, 0.05])
    a = typical + rng.normal(0, 1, (400, len(ROLL_ATTRIBUTES))) * spread
    a[:, 0] = rng.random(400) < 0.74
    a[:270, 3] = 0.0  # most segments unaccompanied, as in the corpus (68%)
    return AttributeSpace.from_corpus(np.abs(a))


@pytest.fixture(scope="session")
def music_space():
    return fake_music_space()


@pytest.fixture
def tiny_music_pipeline(music_space):
    """Symbolic music with a tiny UNet and the literature directions in ``music_space`` (built
    afresh for each test)."""
    from generators.music.modeling_music import build_unet
    from generators.music.pipeline_music import MusicPipeline, make_scheduler

    with torch.random.fork_rng():
        torch.manual_seed(0)
        unet = build_unet((8, 16), 1, 4)
    pipe = MusicPipeline(unet, make_scheduler(), attribute_space=music_space)
    pipe.set_progress_bar_config(disable=True)
    return pipe
