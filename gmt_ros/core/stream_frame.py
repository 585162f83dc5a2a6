"""One frame of a live reference stream: the floating base and joints by name, timestamped.

A producer (teleoperation rig, motion generator) sends frames one at a time to ``gmt_stream``
(docs/STREAMING.md), over a ROS topic (``sensor_msgs/JointState``) or over ZMQ (one JSON object per
message). Both carry the same content, checked here into a :class:`StreamFrame`:

- ``stamp``: the time the pose refers to (capture time), seconds on the producer's clock;
- ``names``: ``floating_base_{x,y,z,qw,qx,qy,qz}`` and G1 joint names, any order
  (``gmt_ros.core.named_pose``; the motion-target window uses the same columns);
- ``positions``: root position (m, world, z up), root quaternion w, x, y, z (world <- pelvis),
  joint angles (rad), in ``names`` order;
- ``velocities`` (optional): same columns, world linear / angular root velocity (0 on qw) and
  joint velocities;
- ``seq`` (optional, ZMQ only): a frame counter, which makes drops and reordering exact.

The ZMQ message is UTF-8 JSON: ``{"stamp": 1700000000.25, "seq": 7, "names": [...],
"positions": [...], "velocities": [...]}`` (``seq`` and ``velocities`` optional). A frame that
cannot be used raises :class:`StreamFrameError` with a short ``reason`` and a message naming the
problem. No ROS import here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.named_pose import FLOATING_BASE_JOINTS, QUAT_NORM_RANGE, named_columns
from gmt_ros.core.window_check import MotionTargetError

MAX_MESSAGE_BYTES = 65536  # a 29-joint frame with velocities is ~2 KB of JSON


class StreamFrameError(MotionTargetError):
    """A stream frame that must not reach the reference; ``reason`` is a short stable code."""


@dataclass(frozen=True)
class StreamFrame:
    """A checked frame: root pose (unit quaternion w, x, y, z), 29 joint angles (unsupplied
    joints 0, ``joint_mask`` False), optional velocities (world root, joints; None if not sent)."""

    stamp: float
    root_pos: np.ndarray
    root_quat: np.ndarray
    joint_pos: np.ndarray
    joint_mask: np.ndarray
    seq: int | None = None
    root_lin_vel: np.ndarray | None = None
    root_ang_vel: np.ndarray | None = None
    joint_vel: np.ndarray | None = None

    @property
    def has_velocities(self) -> bool:
        return self.joint_vel is not None


def _finite(what: str, values: np.ndarray, names) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise StreamFrameError("not_finite", f"stream frame {what} of {names[bad[0]]} is {values[bad[0]]}")


def frame_from_named(names, positions, velocities=None, stamp: float = math.nan, seq: int | None = None,
                     required=()) -> StreamFrame:
    """The frame that ``names``/``positions``/``velocities`` describe; ``required``: joint names
    that must be present (e.g. the 23 every shipped policy tracks). Raises StreamFrameError."""
    names = list(names)
    try:
        stamp = float(stamp)
    except (TypeError, ValueError):
        raise StreamFrameError("bad_stamp", f"stream frame stamp is {stamp!r}, not a number") from None
    if not (math.isfinite(stamp) and stamp > 0):
        raise StreamFrameError("bad_stamp", f"stream frame stamp is {stamp}; send the pose's time in seconds "
                                            "(e.g. time.time() when it was captured)")
    base_cols, joint_cols, slots = named_columns(names, "stream frame", StreamFrameError)
    missing = [n for n in required if n not in names]
    if missing:
        raise StreamFrameError("missing_joints", f"stream frame lacks joints {', '.join(missing)} "
                                                 f"({len(missing)} of the {len(required)} required_joints)")
    pos = np.asarray(positions, dtype=np.float64).reshape(-1)
    if pos.shape != (len(names),):
        raise StreamFrameError("length_mismatch", f"stream frame has {pos.size} positions for {len(names)} names")
    _finite("position", pos, names)
    vel = None
    if velocities is not None and len(velocities):
        vel = np.asarray(velocities, dtype=np.float64).reshape(-1)
        if vel.shape != (len(names),):
            raise StreamFrameError("length_mismatch", f"stream frame has {vel.size} velocities for {len(names)} names")
        _finite("velocity", vel, names)
    quat = pos[base_cols[3:7]]
    norm = float(np.linalg.norm(quat))
    lo, hi = QUAT_NORM_RANGE
    if not lo <= norm <= hi:
        raise StreamFrameError("bad_quaternion", f"stream frame root quaternion has norm {norm:.4f}, outside "
                                                 f"[{lo}, {hi}]; send w, x, y, z of a unit quaternion")
    joint_pos = np.zeros(g1.NUM_BODY_JOINTS)
    joint_pos[slots] = pos[joint_cols]
    mask = np.zeros(g1.NUM_BODY_JOINTS, dtype=bool)
    mask[slots] = True
    lin = ang = jv = None
    if vel is not None:
        lin, ang = vel[base_cols[:3]], vel[base_cols[4:7]]
        jv = np.zeros(g1.NUM_BODY_JOINTS)
        jv[slots] = vel[joint_cols]
    return StreamFrame(stamp=stamp, root_pos=pos[base_cols[:3]].copy(), root_quat=quat / norm, joint_pos=joint_pos,
                       joint_mask=mask, seq=seq, root_lin_vel=lin, root_ang_vel=ang, joint_vel=jv)


def decode_frame_json(data: bytes | str, required=()) -> StreamFrame:
    """A frame from one ZMQ message (UTF-8 JSON object, see the module docstring)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise StreamFrameError("malformed", f"stream message of {len(data)} bytes (at most {MAX_MESSAGE_BYTES})")
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StreamFrameError("malformed", f"stream message is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise StreamFrameError("malformed", f"stream message is a JSON {type(obj).__name__}, not an object")
    absent = [k for k in ("stamp", "names", "positions") if k not in obj]
    if absent:
        raise StreamFrameError("malformed", f"stream message lacks {', '.join(absent)} (has {', '.join(sorted(obj))})")
    names, positions, velocities = obj["names"], obj["positions"], obj.get("velocities")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise StreamFrameError("malformed", "stream message 'names' must be a list of strings")
    for key, value in (("positions", positions), ("velocities", velocities)):
        if value is not None and not (isinstance(value, list) and all(
                (isinstance(x, (int, float)) and not isinstance(x, bool)) or x is None for x in value)):
            raise StreamFrameError("malformed", f"stream message '{key}' must be a list of numbers")
    seq = obj.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
        raise StreamFrameError("malformed", f"stream message 'seq' must be an integer, got {seq!r}")
    # JSON has no NaN in strict form; Python's json reads NaN/Infinity and null stands for a lost value.
    positions = [math.nan if x is None else x for x in positions]
    velocities = None if velocities is None else [math.nan if x is None else x for x in velocities]
    return frame_from_named(names, positions, velocities, obj["stamp"], seq, required)


def encode_frame_json(stamp: float, names, positions, velocities=None, seq: int | None = None) -> bytes:
    """The ZMQ message for one frame (what a Python producer sends)."""
    obj: dict = {"stamp": float(stamp), "names": list(names), "positions": [float(x) for x in positions]}
    if seq is not None:
        obj["seq"] = int(seq)
    if velocities is not None:
        obj["velocities"] = [float(x) for x in velocities]
    return json.dumps(obj, separators=(",", ":")).encode()


def frame_columns(frame_names=None) -> list[str]:
    """Column names for a producer: the floating base, then ``frame_names`` (default all 29 joints)."""
    return list(FLOATING_BASE_JOINTS) + list(g1.JOINT_NAMES if frame_names is None else frame_names)
