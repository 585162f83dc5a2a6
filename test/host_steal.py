"""How much CPU time the hypervisor took from this VM while a node-graph test ran.

The graph's watchdogs are the robot's (100 ms). When the host deschedules the VM's vCPUs for that
long (``steal`` in /proc/stat), every node stalls at once and the supervisor damps, correctly; the
run then says nothing about gmt_ros. Graph tests skip, naming the figure, when such a stall ended
their run and the host took more than STEAL_LIMIT_PERCENT, or the simulated robot itself (SCHED_FIFO
20 with --realtime: nothing else in the VM can hold it up) fell more than FREEZE_LAG_MS behind its
schedule. Some host freezes show in the second figure and not in the first (seen: the sim's
rt/lowstate and the bridge's SCHED_FIFO writer both 100-120 ms late while steal grew by 0.2 %).
Otherwise a failure is a failure.
"""
from __future__ import annotations

import os

import pytest

STEAL_LIMIT_PERCENT = 2.0  # measured: ≈ 0.1-0.5 % on a quiet host, 6-7 % when runs stalled
FREEZE_LAG_MS = 50.0  # the real-time sim's worst lag in runs that completed: 1-22 ms


def _cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies over all CPUs since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return fields[7], sum(fields)


class StealMeter:
    def __enter__(self) -> StealMeter:
        self._start = _cpu_times()
        self._end = None
        return self

    def __exit__(self, *exc) -> None:
        self._end = _cpu_times()

    @property
    def percent(self) -> float:
        end = self._end or _cpu_times()
        total = end[1] - self._start[1]
        return 100.0 * (end[0] - self._start[0]) / total if total > 0 else 0.0

    def skip_if_starved(self, what: str, sim_max_lag_ms: float | None = None) -> None:
        """Skip (naming ``what`` went wrong) when the host took more than the limit, or the
        real-time sim's worst lag (``sim_max_lag_ms``, from its report) shows the VM froze. The
        reason names the test (pytest's skip summary names only this file)."""
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" (")[0]
        named = f"{test}: " if test else ""
        if self.percent > STEAL_LIMIT_PERCENT:
            pytest.skip(f"{named}the host took {self.percent:.1f} % of this VM's CPU time (steal) during the run "
                        f"(limit {STEAL_LIMIT_PERCENT} %) and the watchdogs fired on the stall: {what}")
        if sim_max_lag_ms is not None and sim_max_lag_ms > FREEZE_LAG_MS:
            pytest.skip(f"{named}the simulated robot (SCHED_FIFO, the VM's highest priority) fell {sim_max_lag_ms:.0f} ms "
                        f"behind its schedule (limit {FREEZE_LAG_MS:g} ms): the VM froze, and the watchdogs fired "
                        f"on the stall: {what}")
