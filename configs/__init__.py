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


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_layered(path: str | Path) -> dict:
    """Read a YAML config whose optional ``base:`` names another config (relative to it, or a
    packaged one) that it overrides key by key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {str(path)!r}")
    try:
        cfg = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"config {str(path)!r} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(cfg, dict):
        raise ValueError(f"config {str(path)!r} must be a mapping of sections")
    base = cfg.pop("base", None)
    if base:
        base_path = path.parent / base
        if not base_path.is_file():
            base_path = config_path(base)
        cfg = _merge(load_layered(base_path), cfg)
    return cfg
