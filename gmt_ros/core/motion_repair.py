"""Glitch repair of reference motion clips while they load: implausible jumps between frames found
from the speeds they imply; short glitched runs trimmed at the ends or interpolated inside; cuts
and teleports refused."""
from __future__ import annotations

import itertools
import warnings

import numpy as np

from gmt_ros.core import reference, rotations

# Glitch detection, per step between consecutive frames, on three implied speeds:
# root translation (m/s), root rotation (rad/s) and the fastest joint (rad/s).
# A step is a jump when a speed exceeds JUMP_HARD_LIMIT (nothing a G1 reference should ever do),
# or when it exceeds JUMP_FLOOR *and* is JUMP_RATIO times the median of the same speed over the
# JUMP_NEIGHBOURS steps on either side (a spike, not a fast movement: fast movements are fast
# over several frames). Measured on the shipped clips after repair: genuine motion peaks at
# 1.8 m/s, 6.2 rad/s and 14.3 rad/s (TWIST2 walk_006 squats to 0.42 m, GMT crouchwalk to 0.43 m,
# airkick's kick reaches 6.7 rad/s) and no step above a floor is more than 5.5x its neighbours.
# The corrupt first frames of six TWIST2 recordings are 73-4200x their neighbours (walk_004:
# 95 m/s root, 35 rad/s joint); the mildest two (walk_002, walk_006: 4.4 and 4.6 rad/s of yaw
# in one step) sit just above the 4 rad/s floor.
JUMP_HARD_LIMIT = np.array([8.0, 25.0, 30.0])
JUMP_FLOOR = np.array([1.0, 4.0, 8.0])
JUMP_RATIO = 10.0
JUMP_NEIGHBOURS = 5
# A run of at most this many frames bounded by jumps is a glitch: trimmed at the clip's ends,
# interpolated inside. A jump between two longer stretches is a cut/teleport: refused.
MAX_GLITCH_FRAMES = 5

_SPEED_LABELS = (("root", "m/s"), ("root rotation", "rad/s"), ("joint", "rad/s"))


class MotionRepairWarning(UserWarning):
    """A clip was repaired while loading (frames trimmed or interpolated)."""


def step_speeds(fps: float, root_pos: np.ndarray, root_quat: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
    """(T-1, 3) speeds implied by each step: root m/s, root rotation rad/s, fastest joint rad/s."""
    lin = np.linalg.norm(np.diff(root_pos, axis=0), axis=1) * fps
    ang = np.linalg.norm(rotations.angular_velocity(root_quat[:-1], root_quat[1:], 1.0 / fps), axis=1)
    joint = np.max(np.abs(np.diff(joint_pos, axis=0)), axis=1) * fps
    return np.stack([lin, ang, joint], axis=1)


def find_jumps(speeds: np.ndarray) -> np.ndarray:
    """Which steps are jumps (see JUMP_* above); (T-1,) bool."""
    n = len(speeds)
    w = JUMP_NEIGHBOURS
    if n > 1:
        padded = np.concatenate([np.full((w, 3), np.nan), speeds, np.full((w, 3), np.nan)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1, axis=0).copy()
        windows[:, :, w] = np.nan  # the step itself is not its own neighbour
        local = np.nanmedian(windows, axis=2)
    else:
        local = np.full_like(speeds, np.inf)
    spike = (speeds > JUMP_FLOOR) & (speeds > JUMP_RATIO * local)
    return np.any((speeds > JUMP_HARD_LIMIT) | spike, axis=1)


def _describe_speeds(speeds: np.ndarray) -> str:
    """The peak implied speeds of some steps, those above the floors (all if none is)."""
    peak = speeds.max(axis=0)
    parts = [f"{label} {v:.1f} {unit}" for (label, unit), v in zip(_SPEED_LABELS, peak)]
    above = [p for p, v, floor in zip(parts, peak, JUMP_FLOOR) if v > floor]
    return "jumps of " + ", ".join(above or parts)


def _span(a: int, b: int) -> str:
    return f"frame {a}" if a == b else f"frames {a}-{b}"


def repair_glitches(name: str, fps: float, root_pos: np.ndarray, root_quat: np.ndarray,
                    joint_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Trim glitched leading/trailing frames and interpolate short glitched runs inside.

    The clip is cut at every jump into stretches of frames; stretches longer than
    MAX_GLITCH_FRAMES are genuine motion. Short stretches before the first / after the last
    genuine one are dropped; short runs between two genuine stretches are replaced by
    interpolation between their neighbours. Two genuine stretches meeting at a jump (a cut) or
    a clip with no genuine stretch is refused. Returns the repaired arrays and one note per repair
    (frame numbers of the input); each repair is also warned as MotionRepairWarning.
    """
    what = f"clip {name!r}"
    speeds = step_speeds(fps, root_pos, root_quat, joint_pos)
    jumps = np.flatnonzero(find_jumps(speeds))
    if jumps.size == 0:
        return root_pos, root_quat, joint_pos, []
    n = len(root_pos)
    bounds = [0] + [int(k) + 1 for k in jumps] + [n]
    stretches = list(itertools.pairwise(bounds))  # [start, end) frame ranges between jumps
    genuine = [e - s > MAX_GLITCH_FRAMES for s, e in stretches]
    if not any(genuine):
        raise ValueError(f"{what}: {len(jumps)} implausible jumps and no stretch of more than "
                         f"{MAX_GLITCH_FRAMES} frames without one; not a usable clip")
    root_pos, root_quat, joint_pos = root_pos.copy(), root_quat.copy(), joint_pos.copy()
    notes: list[str] = []
    first = genuine.index(True)
    last = len(genuine) - 1 - genuine[::-1].index(True)
    i = first
    while i < last:
        j = i + 1
        while not genuine[j]:
            j += 1
        # stretches i and j are genuine; everything between is a short glitch run
        a, b = stretches[i][1], stretches[j][0]  # glitch frames [a, b)
        around = speeds[a - 1:b]  # the steps entering, inside and leaving the run
        if a == b:
            raise ValueError(f"{what}: jump between frames {a - 1} and {a} ({_describe_speeds(around)}) "
                             "joins two long stretches: a cut or teleport, not a glitch; fix the clip")
        if b - a > MAX_GLITCH_FRAMES:
            raise ValueError(f"{what}: {b - a} glitched frames in a row ({_span(a, b - 1)}); at most "
                             f"{MAX_GLITCH_FRAMES} can be interpolated")
        frac = (np.arange(a, b) - (a - 1)) / (b - (a - 1))
        root_pos[a:b] = root_pos[a - 1] + frac[:, None] * (root_pos[b] - root_pos[a - 1])
        joint_pos[a:b] = joint_pos[a - 1] + frac[:, None] * (joint_pos[b] - joint_pos[a - 1])
        root_quat[a:b] = reference.slerp_keep_norm(np.broadcast_to(root_quat[a - 1], (b - a, 4)),
                                                   np.broadcast_to(root_quat[b], (b - a, 4)), frac)
        notes.append(f"interpolated {_span(a, b - 1)} between frames {a - 1} and {b} ({_describe_speeds(around)})")
        i = j
    head, tail = stretches[first][0], stretches[last][1]
    for count, where in ((head, "leading"), (n - tail, "trailing")):
        if count > MAX_GLITCH_FRAMES:
            raise ValueError(f"{what}: {count} {where} frames are broken up by jumps; at most "
                             f"{MAX_GLITCH_FRAMES} are dropped as a glitch; fix the clip")
    if head > 0:
        notes.insert(0, f"dropped leading {_span(0, head - 1)} ({_describe_speeds(speeds[:head])}); "
                        f"clip time 0 is input frame {head}")
    if tail < n:
        notes.append(f"dropped trailing {_span(tail, n - 1)} of {n} ({_describe_speeds(speeds[tail - 1:])})")
    root_pos, root_quat, joint_pos = root_pos[head:tail], root_quat[head:tail], joint_pos[head:tail]
    left = np.flatnonzero(find_jumps(step_speeds(fps, root_pos, root_quat, joint_pos)))
    if left.size:
        raise ValueError(f"{what}: still has implausible jumps after repair (at output frames "
                         f"{(left + 1).tolist()[:5]}); fix the clip")
    for note in notes:
        warnings.warn(f"{what}: {note}", MotionRepairWarning, stacklevel=3)
    return root_pos, root_quat, joint_pos, notes
