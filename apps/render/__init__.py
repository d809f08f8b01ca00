"""Batch rendering (``affect render JOBS -o OUT``): a job file (``jobfile``), a crash-safe
manifest (``manifest``) and the runner (``runner``) that executes the jobs in this process, in
worker processes or on Ray, resuming what a killed run left."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from apps.jobs import JobResult, Models
from apps.jobs.base import validator
from apps.render.jobfile import JobFileError, RenderItem, load_jobfile
from apps.render.runner import RenderSummary, check_options, render

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

        check_options(self.device, self.workers, self.batch_size, self.retries, self.precision)
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
