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
