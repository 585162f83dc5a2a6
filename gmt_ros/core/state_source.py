"""One robot on rt/lowstate: the supervisor acts on the states of a single publisher.

A second publisher on the robot's topic (a simulator left running on the same interface and
domain, a second robot or a simulator on the LAN under domain 0, a replay) interleaves its states
with the robot's. The policy, the ramp and the fall check would then read two robots at once:
joint angles of one, IMU of the other, a pelvis height estimate that belongs to neither, and
commands built on them. Nothing in a single message is wrong (each CRC is right), so only the
sequence shows it:

- the DDS writer of each sample (its publication handle): two writers within ``overlap_s`` of
  each other are two live publishers. A new writer after the old one went quiet is a restart of
  the robot or simulator (the state watchdog has already damped an active robot by then): noted,
  not a fault.
- the tick (ms since the robot booted, uint32, wraps after 49.7 days) never goes back for one
  robot; a step back is another robot's clock, or the same publisher restarted. Unitree's Python
  simulator leaves the tick 0 throughout, which never goes back.
"""
from __future__ import annotations

import math

OVERLAP_S = 0.5  # two writers heard within this of each other are both alive
_TICK_MOD = 1 << 32


def ticks_back_ms(previous: int, tick: int) -> int:
    """How many ms ``tick`` lies before ``previous`` on the wrapping uint32 clock (0 if after or equal)."""
    ahead = (int(tick) - int(previous)) % _TICK_MOD
    return _TICK_MOD - ahead if ahead > _TICK_MOD // 2 else 0


class StateSourceCheck:
    """``observe(writer, tick, now)`` on every rt/lowstate, in arrival order: a fault reason
    (two publishers, a tick that went back) or None. ``writer`` is the sample's publication
    handle, or None where the transport does not say (then only the tick is checked).
    ``switch_note`` holds the latest restart notice (a new writer after the old went quiet) until
    ``take_note()``."""

    def __init__(self, overlap_s: float = OVERLAP_S) -> None:
        if not (math.isfinite(overlap_s) and overlap_s > 0):
            raise ValueError(f"state source check: overlap_s must be > 0, got {overlap_s!r}")
        self.overlap_s = float(overlap_s)
        self._writer: int | None = None
        self._writer_last = -math.inf
        self._tick: int | None = None
        self.switch_note: str | None = None

    def observe(self, writer: int | None, tick: int, now: float) -> str | None:
        previous_tick = self._tick
        if writer is not None and self._writer is not None and writer != self._writer:
            quiet = now - self._writer_last
            if quiet <= self.overlap_s:
                return (f"rt/lowstate from two publishers (writers {self._writer:#x} and {writer:#x} within "
                        f"{quiet * 1000.0:.0f} ms, ticks {previous_tick} and {int(tick)}): another robot or "
                        "simulator on this interface and domain")
            self.switch_note = (f"rt/lowstate now from another publisher (writer {writer:#x}, tick {int(tick)}; "
                                f"the previous one silent for {quiet:.1f} s): the robot or simulator restarted")
            previous_tick = None  # a restarted robot counts from its own boot
        if writer is not None:
            self._writer, self._writer_last = writer, now
        self._tick = int(tick)
        if previous_tick is not None:
            back = ticks_back_ms(previous_tick, tick)
            if back:
                return (f"rt/lowstate tick went back {back} ms (from {previous_tick} to {int(tick)}): a second robot "
                        "or simulator on this interface and domain, or the robot restarted")
        return None

    def take_note(self) -> str | None:
        note, self.switch_note = self.switch_note, None
        return note
