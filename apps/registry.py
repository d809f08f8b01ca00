"""The model registry (``configs/models.yaml``) with a presence check for each entry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from configs import load_config


def _locate(check: dict) -> Path | None:
    """Where a registry entry's files are, or None when absent."""
    if "package" in check:
        spec = importlib.util.find_spec(check["package"])
        return Path(spec.origin).parent if spec and spec.origin else None
    if "package_file" in check or "data" in check:
        package, rel = check.get("package_file") or check["data"]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / rel
        return path if path.exists() else None
    if "path" in check:
        path = Path(check["path"])
        return path if path.exists() else None
    raise ValueError(f"unknown check in configs/models.yaml: {check}")


def model_rows() -> list[dict]:
    """Registry entries with ``present`` and ``location`` filled in."""
    rows = []
    for entry in load_config("models.yaml").get("models", []):
        location = _locate(entry.get("check", {}))
        row = {k: entry[k] for k in ("name", "medium", "role", "source", "licence")}
        row["present"] = location is not None
        row["location"] = str(location) if location else None
        rows.append(row)
    return rows
