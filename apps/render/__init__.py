"""Batch rendering (``affect render JOBS -o OUT``): a job file (``jobfile``), a crash-safe
manifest (``manifest``) and the runner (``runner``) that executes the jobs in this process, in
worker processes or on Ray, resuming what a killed run left."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from apps.jobs import JobResult, Models
from apps.jobs.base import validator
from apps.render.jobfile import JobFileError, RenderItem, load_jobfile
from apps.render.runner import RenderSummary, render

__all__ = ["JobFileError", "RenderItem", "RenderJob", "RenderSummary", "load_jobfile", "render"]


@dataclass
class RenderJob:
    """``affect render``: every job of ``jobfile`` into ``output_dir``; see ``runner.render``."""

    jobfile: str | Path
    output_dir: str | Path
    workers: int | None = None
    device: str = "cpu"
    retries: int = 0
    force: bool = False
    dry_run: bool = False
    quiet: bool = False
    read: bool = False
    ray: str | bool | None = None
    batch_size: int = 1
    precision: str = "auto"
    medium = "render"

    @validator
    def validate(self) -> None:
        from apps.jobs import JobError
        from apps.jobs.base import check_device

        from apps.jobs.base import PRECISIONS

        if (self.workers is not None and self.workers < 1) or self.retries < 0 or self.batch_size < 1:
            raise JobError(f"--workers and --batch-size must be >= 1 and --retries >= 0, got "
                           f"{self.workers}, {self.batch_size} and {self.retries}")
        if self.precision not in PRECISIONS:
            raise JobError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        check_device(self.device)
        if self.ray is not None:
            try:
                import ray  # noqa: F401
            except ImportError:
                raise JobError("--ray needs Ray: pip install 'affectstudio[cluster]'") from None

    def run(self, models: Models) -> JobResult:
        lines: list[str] = []
        summary = render(self.jobfile, self.output_dir, workers=self.workers, device=self.device,
                         retries=self.retries, force=self.force, dry_run=self.dry_run, quiet=self.quiet,
                         read=self.read, ray=self.ray, batch_size=self.batch_size,
                         precision=self.precision, echo=lambda line: (print(line), lines.append(line)))
        return JobResult(self, [], [], summary, {}, summary)
