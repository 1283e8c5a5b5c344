"""Failure injection for crash-safety tests: kill this process at a named point.

``BIOSIG_FAILPOINT=name[:n]`` kills the process with SIGKILL the n-th time (default 1st)
it reaches ``hit(name)``. With ``BIOSIG_FAILPOINT_ONCE=PATH`` only the first process to
get there dies (it creates PATH), so a restarted Dask worker goes on. Unset: no effect.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter = Counter()


def hit(name: str) -> None:
    spec = os.environ.get("BIOSIG_FAILPOINT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] != int(nth or 1):
        return
    once = os.environ.get("BIOSIG_FAILPOINT_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)
