"""Real recorded speech (Debian's pocketsphinx-testdata, installed by .ci/setup) for the tests."""

from pathlib import Path

import pytest

DATA = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX = sorted((DATA / "librivox").glob("*.wav"))
CARDS = sorted((DATA / "cards").glob("*.wav"))


@pytest.fixture(scope="session")
def real_clip() -> Path:
    if not LIBRIVOX:
        pytest.fail("pocketsphinx-testdata is missing: run .ci/setup (it installs it)")
    return LIBRIVOX[1]  # "he was not an ill disposed young man", 3.0 s


@pytest.fixture(scope="session")
def tiny_pipeline():
    """A narrow, untrained denoiser with the literature direction model (fast, for plumbing)."""
    from generators.speech.modeling_speech import ProsodyDenoiser
    from generators.speech.pipeline_speech import EmotionVoiceConversionPipeline, make_scheduler
    from generators.speech.profiles import default_direction_model

    den = ProsodyDenoiser(channels=16, dilations=(1, 2), emb_dim=16)
    pipe = EmotionVoiceConversionPipeline(denoiser=den.eval(), scheduler=make_scheduler())
    pipe.direction_model = default_direction_model()
    pipe.set_progress_bar_config(disable=True)
    return pipe
