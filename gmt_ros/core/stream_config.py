"""The settings of a live reference stream (``StreamConfig``; ``gmt_ros.core.stream_source`` says
what each does) and the events it reports (``StreamEvent``)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from gmt_ros.core import g1
from gmt_ros.core.playback import STANDING_HEIGHT

CLOCKS = ("shared", "estimated")


@dataclass(frozen=True)
class StreamConfig:
    delay_s: float = 0.12
    predict_s: float = 0.1
    max_gap_s: float = 0.25
    dead_after_s: float = 0.5
    blend_in_s: float = 1.0
    blend_out_s: float = 1.0
    catch_up_s: float = 0.2
    max_latency_s: float = 0.5
    max_future_s: float = 0.5
    clock: str = "shared"
    standing_height: float = STANDING_HEIGHT
    required_joints: tuple[str, ...] = g1.GMT23_NAMES
    stats_window_s: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "required_joints", tuple(self.required_joints))
        for name in ("delay_s", "predict_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"stream config: {name} must be >= 0, got {value}")
        for name in ("max_gap_s", "dead_after_s", "blend_in_s", "blend_out_s", "catch_up_s", "max_latency_s",
                     "max_future_s", "standing_height", "stats_window_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"stream config: {name} must be positive, got {value}")
        if self.clock not in CLOCKS:
            raise ValueError(f"stream config: clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if self.max_latency_s <= self.delay_s:
            raise ValueError(f"stream config: max_latency_s ({self.max_latency_s:g}) must exceed delay_s "
                             f"({self.delay_s:g}): frames later than the delay are refused anyway")
        g1.slots_of(self.required_joints)  # unknown names are an error naming them

    @property
    def keep_s(self) -> float:
        """How long frames are kept behind the playback point (a bracket across a gap)."""
        return self.max_gap_s + 0.5


@dataclass(frozen=True)
class StreamEvent:
    """Something a log line should name: ``level`` info/warning/error, a short ``code``."""

    time: float
    level: str
    code: str
    text: str
