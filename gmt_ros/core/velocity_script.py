"""A scripted sequence of velocity commands (what an operator or Nav2 would send on /cmd_vel).

YAML (``config/cmd_vel_script.yaml`` is the shipped one)::

    duration_s: 60.0        # the segments repeat until this much time has passed
    rate_hz: 20.0           # how often a runner publishes the current command
    segments:
      - {name: forward, duration_s: 6.0, vx: 0.5}
      - {name: turn, duration_s: 6.0, wz: 0.6}
      - {name: sideways, duration_s: 4.0, vy: 0.2}
      - {name: stop, duration_s: 4.0}

``vx`` forward and ``vy`` left in m/s, ``wz`` counter-clockwise in rad/s (REP 103, the body
frame); a value left out is 0. Times are seconds from the start of the script.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

_SEGMENT_KEYS = {"name", "duration_s", "vx", "vy", "wz"}


@dataclass(frozen=True)
class Segment:
    name: str
    start_s: float
    end_s: float
    command: tuple[float, float, float]  # vx, vy, wz


@dataclass(frozen=True)
class VelocityScript:
    segments: tuple[Segment, ...]  # the whole timeline, repetitions unrolled, in order
    duration_s: float
    rate_hz: float = 20.0
    source: str = ""

    def segment_at(self, t: float) -> Segment | None:
        """The segment playing at t (None before 0 or from duration_s on)."""
        if not (0.0 <= t < self.duration_s):
            return None
        for seg in self.segments:
            if seg.start_s <= t < seg.end_s:
                return seg
        return None

    def truncated(self, seconds: float) -> VelocityScript:
        """The script's first ``seconds``."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be positive, got {seconds}")
        if seconds >= self.duration_s:
            return self
        segments = tuple(replace(seg, end_s=min(seg.end_s, float(seconds))) for seg in self.segments
                         if seg.start_s < seconds)
        return replace(self, segments=segments, duration_s=float(seconds))

    def command_at(self, t: float) -> np.ndarray:
        """(vx, vy, wz) at t; zero outside the script."""
        seg = self.segment_at(t)
        return np.array(seg.command if seg is not None else (0.0, 0.0, 0.0))


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def parse_script(data: dict, source: str = "") -> VelocityScript:
    where = f"velocity script {source}" if source else "velocity script"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with duration_s and segments")
    unknown = set(data) - {"duration_s", "rate_hz", "segments"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (known: duration_s, rate_hz, segments)")
    raw = data.get("segments")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: segments must be a non-empty list")
    pattern: list[tuple[str, float, tuple[float, float, float]]] = []
    for i, seg in enumerate(raw):
        if not isinstance(seg, dict):
            raise ValueError(f"{where}: segment {i} must be a mapping")
        bad = set(seg) - _SEGMENT_KEYS
        if bad:
            raise ValueError(f"{where}: segment {i} has unknown keys {sorted(bad)} (known: {sorted(_SEGMENT_KEYS)})")
        length = _number(seg.get("duration_s"), f"{where}: segment {i} duration_s")
        if length <= 0:
            raise ValueError(f"{where}: segment {i} duration_s must be positive, got {length}")
        vx, vy, wz = (_number(seg.get(k, 0.0), f"{where}: segment {i} {k}") for k in ("vx", "vy", "wz"))
        cmd = (vx, vy, wz)
        pattern.append((str(seg.get("name", f"segment{i}")), length, cmd))
    cycle = sum(p[1] for p in pattern)
    duration = _number(data.get("duration_s", cycle), f"{where}: duration_s")
    rate = _number(data.get("rate_hz", 20.0), f"{where}: rate_hz")
    if duration <= 0 or rate <= 0:
        raise ValueError(f"{where}: duration_s and rate_hz must be positive")
    segments, t = [], 0.0
    while t < duration - 1e-9:
        for name, length, cmd in pattern:
            if t >= duration - 1e-9:
                break
            end = min(t + length, duration)
            segments.append(Segment(name, round(t, 9), round(end, 9), cmd))
            t = end
    return VelocityScript(tuple(segments), duration, rate, source)


def load_script(path: str | Path) -> VelocityScript:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"velocity script not found: {path}")
    with open(path) as f:
        data = yaml.safe_load(f)
    return parse_script(data, str(path))
