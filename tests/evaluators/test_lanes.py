"""Lanes of a sweep side by side: results, timings, and a failure or Ctrl-C ending every lane."""

import threading
import time

import pytest

from evaluators.lanes import Stopped, run_lanes, stoppable


def test_lanes_run_side_by_side_and_return_every_result():
    started = {}
    both = threading.Barrier(2, timeout=5)  # each lane waits for the other: only side by side can pass

    def lane(name):
        def run():
            started[name] = threading.current_thread().name
            both.wait()
            return name.upper()
        return run

    results, seconds = run_lanes({"a": lane("a"), "b": lane("b")}, True, threading.Event())
    assert results == {"a": "A", "b": "B"} and set(seconds) == {"a", "b"}
    assert started["a"] != started["b"]


def test_one_after_the_other_when_not_parallel():
    order = []
    results, _ = run_lanes({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, False,
                           threading.Event())
    assert order == ["a", "b"] and set(results) == {"a", "b"}


def test_a_failing_lane_stops_the_others_at_their_next_call_and_is_raised():
    stop = threading.Event()
    calls = []
    work = stoppable(lambda: (calls.append(1), time.sleep(0.05)), stop)

    def endless():
        while True:
            work()

    def failing():
        time.sleep(0.2)
        raise ValueError("bad input in one lane")

    t = time.time()
    with pytest.raises(ValueError, match="bad input in one lane"):
        run_lanes({"endless": endless, "failing": failing}, True, stop)
    assert stop.is_set() and time.time() - t < 5 and calls  # the endless lane ended at its next call
    with pytest.raises(Stopped):
        work()
