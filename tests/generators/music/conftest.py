"""The music tests' attribute space: the shared corpus-like one (``tests/conftest.py``)."""

import pytest


@pytest.fixture(scope="session")
def space(music_space):
    return music_space
