"""Parts of a sweep run side by side on the CPU's cores (``affect eval all``).

Each part is a lane: a zero-argument callable. Lanes run in threads, each with single-threaded
torch, so the cores are shared between lanes rather than between one lane's small tensor
operations; while one lane is in Python, the synthesizer, the video encoder or the face mesh, the
other core still works. Every output a lane makes comes from its own seeded generator, so what the
lanes make does not depend on how they interleave.
"""

from __future__ import annotations

import time


class Stopped(KeyboardInterrupt):
    """Raised inside a lane at its next generator call once the sweep was asked to stop."""


def stoppable(fn, stop):
    """``fn`` that raises ``Stopped`` instead of running once ``stop`` is set."""
    def call(*args, **kwargs):
        if stop.is_set():
            raise Stopped
        return fn(*args, **kwargs)
    return call


def run_lanes(lanes: dict, parallel: bool, stop) -> tuple[dict, dict]:
    """Run ``lanes`` (name -> zero-argument callable) one after the other, or side by side in
    threads with single-threaded torch each (the CPU's cores are shared between the lanes rather
    than between a lane's small tensor operations, which keeps both cores busy while one lane is
    in Python, the synthesizer, the video encoder or the face mesh). Returns (results, seconds).
    A failure or a Ctrl-C sets ``stop`` (the other lanes end at their next generator call) and is
    raised once every lane has ended."""
    results, seconds = {}, {}

    def timed(name, fn, threads: int | None):
        import torch

        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        t = time.time()
        try:
            results[name] = fn()
        except BaseException:
            stop.set()
            raise
        finally:
            seconds[name] = time.time() - t
            if threads:
                torch.set_num_threads(before)

    if not parallel or len(lanes) < 2:
        for name, fn in lanes.items():
            timed(name, fn, None)
        return results, seconds
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="eval")
    try:
        futures = [pool.submit(timed, name, fn, 1) for name, fn in lanes.items()]
        failures = [f.exception() for f in futures]  # waits for each lane
    except BaseException:  # Ctrl-C while waiting
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
    # the cause, not the lanes it stopped
    failures = [e for e in failures if e is not None]
    for exc in sorted(failures, key=lambda e: isinstance(e, Stopped)):
        raise exc
    return results, seconds
