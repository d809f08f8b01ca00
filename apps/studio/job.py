"""``StudioJob``: what ``affect studio`` asks for (where to serve, where to keep files, the
limits), checked before anything starts, then served until Ctrl-C."""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from apps.jobs.base import JobError, JobResult, Models, check_device, validator

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the system calls free on ``host`` now (for tests and ``--port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _stop_on_signals() -> dict:
    """Make Ctrl-C (SIGINT) and SIGTERM stop the server with a clean close, however the command was
    started: a process started in the background by a shell inherits SIGINT ignored, and Python
    then never raises KeyboardInterrupt for it. Returns the handlers it replaced (none off the
    main thread, where signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum, frame):
        raise KeyboardInterrupt

    return {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}


@dataclass
class StudioJob:
    """Serve the studio on ``host:port`` (loopback by default; port 0: any free one), keeping
    per-request folders under ``root``, with a queue of ``queue_size`` waiting requests."""

    host: str = "127.0.0.1"
    port: int = 7860
    root: str | Path | None = None
    device: str = "cpu"
    queue_size: int = 16
    max_seconds: float = 60.0
    max_upload_mb: float = 50.0
    medium = "studio"

    @validator
    def validate(self) -> None:
        try:
            import gradio  # noqa: F401
        except ImportError:
            raise JobError("the studio needs gradio: pip install 'affectstudio[studio]' (or run .ci/setup)") from None
        if self.host not in LOOPBACK:
            try:
                ipaddress.ip_address(self.host)
            except ValueError:
                raise JobError(f"--host must be an IP address or localhost, got {self.host!r}") from None
        if not 0 <= int(self.port) <= 65535:
            raise JobError(f"--port must be in [0, 65535], got {self.port}")
        if self.port and not port_free(self.host, int(self.port)):
            raise JobError(f"port {self.port} on {self.host} is in use; choose another with --port "
                           "(0 picks a free one)")
        if not 1 <= self.queue_size <= 1000:
            raise JobError(f"--queue-size must be in [1, 1000], got {self.queue_size}")
        if not 1.0 <= self.max_seconds <= 120.0:
            raise JobError(f"--max-seconds must be in [1, 120] (the voice converter's own limit), got "
                           f"{self.max_seconds:g}")
        if not 0.1 <= self.max_upload_mb <= 2000:
            raise JobError(f"--max-upload-mb must be in [0.1, 2000], got {self.max_upload_mb:g}")
        if self.root is not None and Path(self.root).exists() and not Path(self.root).is_dir():
            raise JobError(f"--root {str(self.root)!r} exists and is not a folder")
        check_device(self.device)

    def run(self, models: Models) -> JobResult:
        from apps.studio.app import launch
        from apps.studio.handlers import Limits, Studio

        studio = Studio(self.root, models, self.device,
                        Limits(max_upload_mb=self.max_upload_mb, max_audio_s=self.max_seconds))
        port = self.port or free_port(self.host)
        demo, url = launch(studio, self.host, port, self.queue_size)
        if self.host not in LOOPBACK and not ipaddress.ip_address(self.host).is_loopback:
            print(f"affect studio: listening on {self.host}: reachable from other machines", flush=True)
        previous = _stop_on_signals()
        try:
            demo.block_thread()
        except KeyboardInterrupt:
            pass
        finally:
            demo.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return JobResult(self, [], [f"affect studio: stopped ({url})"], {"url": url, "root": str(studio.root)})
