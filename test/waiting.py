"""Tests wait for behaviour, never for time: ``wait_until`` polls a condition up to a generous
deadline (a loaded machine is slow, not wrong) and fails naming what never happened. Rates and
latencies are measured by ``gmt-ros bench`` and ``gmt-ros faults``, not asserted here."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout_s: float = 10.0, what: str = "the condition",
               poll_s: float = 0.005) -> T:
    """The first truthy value of ``condition()``; AssertionError naming ``what`` after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(poll_s)
