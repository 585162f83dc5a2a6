"""The faults, as a registry of fault classes (``fault.Fault``: how each is injected, when detection
became possible, what counts as handled; the classes in ``damping_faults``, ``motion_target_faults``
and ``startup_faults``), and the plan of runs. ``verdict.evaluate`` is the one verdict path: what
every fault reports, then the fault's own part.

Adding a fault is a class (registered here, and a row in docs/FAULTS.md), not a branch in the runner.
"""
from __future__ import annotations

from gmt_ros.tools import UsageError
from gmt_ros.tools.faults.damping_faults import (
    EStop,
    LowstateDelay,
    LowstateStop,
    PolicyHuge,
    PolicyKill,
    PolicyNan,
    PushFall,
    StateBadCrc,
)
from gmt_ros.tools.faults.fault import Fault
from gmt_ros.tools.faults.motion_target_faults import MalformedWindows, PlayerStop
from gmt_ros.tools.faults.startup_faults import DeadWaist, WrongModeMachine

FAULTS: tuple[Fault, ...] = tuple(sorted(
    (cls() for cls in (LowstateStop, LowstateDelay, StateBadCrc, PolicyKill, PolicyNan, PolicyHuge, PlayerStop,
                       MalformedWindows, PushFall, EStop, WrongModeMachine, DeadWaist)),
    key=lambda f: f.number))
BY_NAME: dict[str, Fault] = {f.name: f for f in FAULTS}

# One run per entry (a fresh graph each); malformed windows leave the graph tracking, so a second
# fault follows in the same run. --short covers every class with fewer runs.
RUNS = {
    "full": (("lowstate_stop",), ("lowstate_delay",), ("state_bad_crc",), ("malformed_windows", "policy_kill"),
             ("policy_nan",), ("policy_huge",), ("player_stop",), ("push_fall",), ("estop",),
             ("wrong_mode_machine",), ("dead_waist",)),
    "short": (("malformed_windows", "policy_nan"), ("state_bad_crc",), ("estop",), ("wrong_mode_machine",)),
}


def plan_runs(mode: str, only=None) -> list[tuple[str, ...]]:
    """The runs for ``mode`` ("full"/"short"), restricted to ``only`` (fault names) if given;
    a chained run whose partner is not selected runs its selected fault alone."""
    if only:
        unknown = [n for n in only if n not in BY_NAME]
        if unknown:
            raise UsageError(f"unknown fault(s) {unknown}; known: {', '.join(BY_NAME)}")
        runs = []
        for run in RUNS["full"]:
            kept = tuple(n for n in run if n in only)
            if kept:
                runs.append(kept)
        return runs
    return list(RUNS[mode])


def bound_s(fault: Fault, settings: dict) -> float | None:
    return fault.bound_s(settings)
