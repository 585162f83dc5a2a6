"""Tracking metrics as in the GMT paper's Table 2, computed per control tick and averaged.

- e_mpjpe_rad: mean absolute joint-position error over the policy's joints that the clip supplies.
- e_mpkpe_mm: mean key-body position error, bodies taken relative to the root and rotated into the
  root's heading frame (so a drift in position or heading is not counted as a pose error).
  Key bodies: ``sim2sim.kinematics.KEY_BODIES``.
- e_vel_mps: root linear-velocity error, both velocities in their own heading frame.
- e_yaw_vel_radps: absolute error of the root's yaw rate (world z angular velocity).

Over many runs (``sim2sim.batch``): each run contributes its own time-averaged errors (averaged
over the ticks it was upright), and runs are summarised with a Student-t 95 % confidence
interval of their mean (:func:`mean_confidence_interval`); fall rates with a Wilson score
interval (:func:`wilson_interval`). Both are exact closed forms, so a summary can be checked by
hand; no SciPy needed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from gmt_ros.core import rotations


def heading_relative(body_pos: np.ndarray, root_pos: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    """Body positions (K,3) relative to the root, in the root's heading (yaw-only) frame."""
    return rotations.rotate_inverse(rotations.yaw_quat(root_quat), body_pos - root_pos)


def in_heading_frame(vec: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    return rotations.rotate_inverse(rotations.yaw_quat(root_quat), vec)


class TickErrors(NamedTuple):
    """The four tracking errors of one control tick."""

    e_mpjpe_rad: float
    e_mpkpe_mm: float
    e_vel_mps: float
    e_yaw_vel_radps: float


def tick_errors(*, joint_pos, ref_joint_pos, joint_mask, body_rel, ref_body_rel,
                root_vel_heading, ref_root_vel_heading, yaw_rate, ref_yaw_rate) -> TickErrors:
    """The errors of one tick (see the module docstring for each term's definition)."""
    return TickErrors(
        float(np.mean(np.abs(joint_pos - ref_joint_pos)[joint_mask])),
        float(np.mean(np.linalg.norm(body_rel - ref_body_rel, axis=-1))) * 1000.0,
        float(np.linalg.norm(root_vel_heading - ref_root_vel_heading)),
        float(abs(yaw_rate - ref_yaw_rate)),
    )


@dataclass
class TrackingErrors:
    """Accumulates per-tick errors; ``summary()`` gives the means."""

    mpjpe: list = field(default_factory=list)
    mpkpe: list = field(default_factory=list)
    vel: list = field(default_factory=list)
    yaw_vel: list = field(default_factory=list)

    def add(self, **terms) -> TickErrors:
        """Compute one tick's errors (keywords of :func:`tick_errors`), keep and return them."""
        return self.add_tick(tick_errors(**terms))

    def add_tick(self, e: TickErrors) -> TickErrors:
        self.mpjpe.append(e.e_mpjpe_rad)
        self.mpkpe.append(e.e_mpkpe_mm)
        self.vel.append(e.e_vel_mps)
        self.yaw_vel.append(e.e_yaw_vel_radps)
        return e

    def summary(self) -> dict:
        def mean(x):
            return float(np.mean(x)) if x else float("nan")

        return {
            "e_mpjpe_rad": mean(self.mpjpe),
            "e_mpkpe_mm": mean(self.mpkpe),
            "e_vel_mps": mean(self.vel),
            "e_yaw_vel_radps": mean(self.yaw_vel),
        }


FALL_MIN_PELVIS_HEIGHT_M = 0.30  # deep squats in the shipped clips legitimately reach 0.41 m
FALL_MAX_TILT_RAD = 1.2


def has_fallen(pelvis_height: float, roll: float, pitch: float) -> bool:
    return pelvis_height < FALL_MIN_PELVIS_HEIGHT_M or abs(roll) > FALL_MAX_TILT_RAD or abs(pitch) > FALL_MAX_TILT_RAD


# -- confidence intervals over runs -------------------------------------------------------------------

def _t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer ``df`` degrees of freedom, in closed form
    (Abramowitz & Stegun 26.7.3 / 26.7.4: a finite series in cos(theta), theta = atan(t / sqrt(df)))."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(2, df, 2):  # 1 + 1/2 c^2 + (1*3)/(2*4) c^4 + ... up to c^(df-2)
            term *= c2 * (k - 1) / k
            total += term
        return s * total
    if df == 1:
        return 2.0 * theta / math.pi
    term, total = math.cos(theta), math.cos(theta)
    for k in range(3, df, 2):  # cos + 2/3 cos^3 + (2*4)/(3*5) cos^5 + ... up to cos^(df-2)
        term *= c2 * (k - 1) / k
        total += term
    return 2.0 / math.pi * (theta + s * total)


def t_critical(confidence: float, df: int) -> float:
    """The two-sided Student-t critical value: P(|T| < t) = confidence (95 %, df 9 -> 2.262)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(df, bool) or int(df) != df or df < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df}")
    df = int(df)
    lo, hi = 0.0, 1.0
    while _t_two_sided_mass(hi, df) < confidence:
        hi *= 2.0
    for _ in range(200):  # bisection to machine precision
        mid = 0.5 * (lo + hi)
        if _t_two_sided_mass(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


class Interval(NamedTuple):
    """A point estimate with its confidence interval; ``n`` is how many values it rests on."""

    value: float
    low: float
    high: float
    n: int

    def as_dict(self, digits: int | None = None) -> dict:
        def r(x):
            if not math.isfinite(x):
                return None
            return round(x, digits) if digits is not None else x
        return {"value": r(self.value), "low": r(self.low), "high": r(self.high), "n": self.n}


def mean_confidence_interval(values, confidence: float = 0.95, lower_bound: float | None = None,
                             upper_bound: float | None = None) -> Interval:
    """Mean of ``values`` with the Student-t interval mean ± t·s/√n (s: sample standard deviation).

    NaN/None values (runs with no upright tick) are left out; no values gives NaNs; one value gives
    its own value with an unbounded (NaN) interval. ``lower_bound`` / ``upper_bound``: the range
    the mean can have (0 for an error magnitude, [0, 1] for a rate); the interval is cut there,
    which keeps its coverage.
    """
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(np.mean(x))
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    half = t_critical(confidence, n - 1) * float(np.std(x, ddof=1)) / math.sqrt(n)
    low = mean - half if lower_bound is None else max(lower_bound, mean - half)
    high = mean + half if upper_bound is None else min(upper_bound, mean + half)
    return Interval(mean, low, high, n)


Z_95 = 1.959963984540054  # standard normal 97.5 % quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> Interval:
    """The proportion successes/n with its Wilson score interval (95 % for the default z)."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"the number of trials must be a positive integer, got {n}")
    if int(successes) != successes or not 0 <= successes <= n:
        raise ValueError(f"successes must be an integer in [0, {n}], got {successes}")
    n, k = int(n), int(successes)
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact bounds where rounding would miss them
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(p, low, high, n)
