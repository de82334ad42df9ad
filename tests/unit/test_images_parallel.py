"""The lab's images are made at the same time: every job in its own thread, errors raised after all have ended."""

import threading

import pytest

from sendmail_fleet.images import all_at_once


def test_every_job_runs_at_the_same_time_and_results_keep_the_jobs_order():
    barrier = threading.Barrier(3, timeout=10)  # breaks (and fails the test) unless all three wait at once

    def job(n: int) -> int:
        barrier.wait()
        return n * 10

    assert all_at_once([1, 2, 3], job) == [10, 20, 30]


def test_a_failing_job_is_raised_after_the_others_have_ended():
    ended: list[str] = []

    def job(name: str) -> str:
        if name == "bad":
            raise RuntimeError("mmdebstrap failed")
        threading.Event().wait(0.2)
        ended.append(name)
        return name

    with pytest.raises(RuntimeError, match="mmdebstrap failed"):
        all_at_once(["bad", "good"], job)
    assert ended == ["good"]


def test_one_job_or_none_needs_no_thread():
    assert all_at_once([], lambda n: n) == []
    assert all_at_once([7], lambda n: threading.current_thread() is threading.main_thread()) == [True]


def test_at_most_that_many_jobs_run_at_once():
    barrier = threading.Barrier(2, timeout=10)  # two do run at once ...
    lock, running, most = threading.Lock(), [0], [0]

    def job(n: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        barrier.wait()
        with lock:
            running[0] -= 1
        return n

    assert all_at_once([1, 2, 3, 4], job, most=2) == [1, 2, 3, 4]
    assert most[0] == 2  # ... and never a third
