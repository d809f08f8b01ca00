"""Packaged YAML configs: the model registry, training recipes and example batch jobs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml


def config_path(name: str) -> Path:
    """Path of a packaged config, e.g. ``config_path("models.yaml")``."""
    path = Path(str(resources.files("configs").joinpath(name)))
    if not path.exists():
        raise FileNotFoundError(f"no packaged config {name!r}")
    return path


def load_config(name: str) -> dict:
    """Read a packaged YAML config."""
    return yaml.safe_load(config_path(name).read_text("utf-8")) or {}
