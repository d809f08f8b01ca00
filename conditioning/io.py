"""Atomic file output: a crash never leaves a half-written file under the final name; and the
native libraries' chatter kept off the process's stderr (``native_stderr_to_log``).

Every writer in the project goes through ``atomic_write``: it yields a temporary path in the
destination's folder (same file system, so the final ``os.replace`` is atomic), and moves it into
place only when the block finishes without an exception.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def check_writable(path: str | Path) -> Path:
    """Fail early, with a clear message, when an output path cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.exists() and path.is_dir():
        raise ValueError(f"output path {str(path)!r} is a folder; give a file name")
    if not parent.exists():
        raise ValueError(f"cannot write {str(path)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write {str(path)!r}: folder {str(parent)!r} is not writable")
    return path


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[str]:
    """Yield a temporary file name beside ``path``; rename it to ``path`` on success.

    ``mode`` is kept for readability at call sites ("w" text, "wb" binary); the caller opens or
    hands the temporary name to a library writer itself.

    Example:
        >>> import tempfile, pathlib
        >>> d = tempfile.mkdtemp()
        >>> with atomic_write(pathlib.Path(d) / "a.txt", "w") as tmp:
        ...     _ = pathlib.Path(tmp).write_text("hi")
        >>> (pathlib.Path(d) / "a.txt").read_text()
        'hi'
    """
    del mode
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent
    )
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def native_stderr_to_log(logger: logging.Logger, label: str) -> Iterator[None]:
    """Send what native code writes to the process's stderr (file descriptor 2) during the block
    to ``logger`` at debug level instead: libsndfile's mp3 decoder and mediapipe's TFLite runtime
    print notes there that Python cannot silence, and the command line's refusals are one line."""
    fd = 2  # the C libraries write to the descriptor, whatever Python's sys.stderr is
    try:
        saved = os.dup(fd)
    except OSError:  # no descriptor 2 in this process: nothing to catch
        yield
        return
    if sys.stderr is not None:
        sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            chatter = sink.read().decode(errors="replace").strip()
            if chatter:
                logger.debug("%s: %s", label, chatter)
