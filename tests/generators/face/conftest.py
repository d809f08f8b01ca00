"""A real photographed portrait and real recorded speech for the face tests."""

from pathlib import Path

import numpy as np
import pytest

LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The astronaut portrait shipped in scikit-image (NASA, public domain)."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def portrait(astronaut):
    from generators.face.portrait import analyse_portrait

    return analyse_portrait(astronaut, face_resolution=128)


@pytest.fixture(scope="session")
def real_clip() -> Path:
    if not LIBRIVOX:
        pytest.fail("pocketsphinx-testdata is missing: run .ci/setup (it installs it)")
    return LIBRIVOX[1]  # "he was not an ill disposed young man", 3.0 s
