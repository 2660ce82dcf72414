"""Processes that automations start must not outlive them.

The worker makes itself a child subreaper, so whatever its automations start, even a daemon that
double-forks into a new session, stays its descendant; at the end of every attempt it kills the
children that were not there before, and the daemon kills every descendant when it kills a worker.
Synchronous (psutil walks /proc): callers run it off their event loop.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

import psutil

PR_SET_CHILD_SUBREAPER = 36
# A process that forks while we kill its tree leaves an orphan that we find on the next pass.
_KILL_PASSES = 5
REAP_TIMEOUT_S = 5.0


def become_subreaper() -> None:
    """Orphans among this process's descendants reparent to it instead of to init (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def own_children() -> set[psutil.Process]:
    """This process's children, zombies included (so they get reaped).

    A Process compares by pid and start time, so a reused pid is a different process."""
    return set(psutil.Process().children())


def kill_new_children(baseline: set[psutil.Process]) -> int:
    """SIGKILL every child of this process not in ``baseline``, with all its descendants, and reap them.

    Killed grandchildren reparent to this subreaper, so the next pass reaps them. Returns how many
    processes were signalled.
    """
    killed = 0
    for _ in range(_KILL_PASSES):
        new = own_children() - baseline
        if not new:
            break
        killed += kill_trees(new)
        psutil.wait_procs(list(new), timeout=REAP_TIMEOUT_S)
    return killed


def kill_descendants(pid: int) -> int:
    """SIGKILL every live descendant of ``pid`` (not ``pid`` itself); returns how many were signalled.

    Their parents reap them, or init once ``pid`` is gone too."""
    killed = 0
    for _ in range(_KILL_PASSES):
        try:
            descendants = [p for p in psutil.Process(pid).children(recursive=True) if _alive(p)]
        except psutil.Error:
            break
        if not descendants:
            break
        killed += kill_trees(descendants)
    return killed


def kill_trees(roots: Iterable[psutil.Process]) -> int:
    """SIGKILL the roots and their descendants; returns how many were signalled."""
    processes: set[psutil.Process] = set()
    for root in roots:
        processes.add(root)
        try:
            processes.update(root.children(recursive=True))
        except psutil.Error:
            pass
    for process in processes:
        try:
            process.kill()  # psutil refuses when the pid was reused by another process
        except psutil.Error:
            pass
    return len(processes)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
