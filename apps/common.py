"""What every interface shares: the offline defaults, the one error type users see, the device
check and quiet library loading. Imported by the jobs, the CLI, the demo and the bench (so none of
them imports another for these)."""

from __future__ import annotations

import os

# No network unless a user names a hub model: the packaged models load from local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


class JobError(ValueError):
    """Bad input to a job: the message is the one line a user sees (what was wrong; what is
    accepted). The CLI prints it and exits with status 2; the studio shows it; the renderer records
    it against the job."""


def check_device(name: str) -> str:
    """A torch device that exists here, or a one-line error naming the ones that do."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise JobError(f"unknown device {name!r}; accepted: cpu, cuda, cuda:N, mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise JobError(f"device {name!r} asked for, but no CUDA GPU is available here; use cpu")
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise JobError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise JobError("device 'mps' asked for, but it is not available here; use cpu")
    return name


def quiet_diffusers() -> None:
    """No loading progress bars (results are reported instead)."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
