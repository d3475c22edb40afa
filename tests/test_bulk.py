"""Bulk runs pause the cyclic garbage collector and always hand it back as they found it;
tasks taken in turn by several processes are each done once."""

from __future__ import annotations

import gc
import os
import time

import pytest

from horeca.bulk import collector_paused, in_turn


def test_collector_is_paused_inside_and_restored_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()


def test_collector_left_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def _tasks_done(processes: int, tasks: int = 40, pause: float = 0.02) -> list[list[tuple]]:
    done: list[tuple[int, bool, int]] = []

    def work(k: int, here: bool) -> None:
        time.sleep(pause)  # long enough that the forked process starts and takes some
        done.append((k, here, os.getpid()))

    return in_turn(tasks, work, lambda: done, processes=processes)


def test_tasks_taken_in_turn_are_each_done_once_by_this_process_and_a_forked_one() -> None:
    parts = _tasks_done(processes=2)
    assert len(parts) == 2
    tasks = sorted(k for part in parts for k, _here, _pid in part)
    assert tasks == list(range(40))
    mine, other = parts
    assert mine and all(here and pid == os.getpid() for _k, here, pid in mine)
    assert other and all(not here and pid != os.getpid() for _k, here, pid in other)


def test_with_one_process_every_task_is_done_here_in_order() -> None:
    (part,) = _tasks_done(processes=1, tasks=5, pause=0)
    assert part == [(k, True, os.getpid()) for k in range(5)]


def test_a_pool_process_handed_two_turns_reports_once() -> None:
    # A pool does not promise one turn per process: a process that is handed a second
    # turn finds no task left and must not report its results a second time.
    import multiprocessing

    from horeca import bulk

    done: list[int] = []
    bulk._IN_TURN.update(tasks=3, work=lambda k, here: done.append(k), collect=lambda: done,
                         counter=multiprocessing.Value("i", 0))
    try:
        assert bulk._take_in_turn(False) == (True, [0, 1, 2])
        assert bulk._take_in_turn(False) == (False, None)
    finally:
        bulk._IN_TURN.clear()


def test_a_pool_worker_does_not_fork_workers_of_its_own() -> None:
    import multiprocessing

    from horeca.bulk import can_fork

    assert can_fork()
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(can_fork) is False


def test_results_in_turn_come_back_in_task_order_whoever_did_them() -> None:
    from horeca.bulk import results_in_turn

    def work(k: int, here: bool) -> tuple[int, int]:
        time.sleep(0.01)
        return k * k, os.getpid()

    results = results_in_turn(30, work, processes=2)
    assert [square for square, _pid in results] == [k * k for k in range(30)]
    assert len({pid for _square, pid in results}) == 2
