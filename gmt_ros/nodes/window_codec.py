"""Motion windows on the wire: MotionWindow <-> trajectory_msgs/JointTrajectory.

The encoding (docs/MOTION_TARGET.md is the reference for producers):

- ``header.stamp``: time of the first frame (ROS clock, i.e. system time); ``header.frame_id``:
  ``"world"`` (empty is accepted as the same).
- ``joint_names``: the floating base as seven virtual joints (:data:`FLOATING_BASE_JOINTS`:
  x, y, z, qw, qx, qy, qz) and robot joints by their G1 names; every column is found by its
  name, so any order works (the encoder puts the floating base first); any subset of the joints.
- ``points[i].positions``, in ``joint_names`` order: root position (m, world), root orientation
  quaternion w, x, y, z (world <- pelvis), joint positions (rad).
- ``points[i].velocities`` (optional, all points or none), same columns: world linear velocity on
  x, y, z, 0 on qw, world angular velocity on qx, qy, qz, joint velocities. When absent the decoder
  computes them from the points by the consumer's reference conventions (the policy contract's
  ``reference``: forward or central differences, the box filter, padded with the edge value at the
  window's ends, which are not the motion's ends; see ``gmt_ros.core.reference``).
- ``points[i].time_from_start``: strictly increasing; frame i is at ``stamp + time_from_start``.
  The decoder resamples onto a uniform grid of step ``dt`` starting at the first point and ending
  at the last grid time not after the last point (velocities interpolated, or those of the point
  at or before the grid time for ``velocity_sampling: frame``). Root quaternions with a norm in
  ``reference.QUAT_NORM_RANGE`` are normalised, or kept as sent for ``quaternions: as_stored``.

Joints a producer leaves out are 0 with ``joint_mask`` False. Any malformed message raises
:class:`MotionTargetError` whose ``reason`` is a short code and whose message names the problem.
Only message types are imported here: no node, no rclpy.
"""
from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from gmt_ros.core import g1, reference
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.named_pose import FLOATING_BASE_JOINTS, named_columns
from gmt_ros.core.reference import QUAT_NORM_RANGE, ReferenceConventions
from gmt_ros.core.window_check import MotionTargetError

FRAME_ID = "world"


def seconds_to_time(t: float) -> Time:
    sec = math.floor(t)
    nanosec = int(round((t - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=int(sec), nanosec=nanosec)


def time_to_seconds(stamp) -> float:
    """Seconds of a builtin_interfaces Time or Duration."""
    return stamp.sec + stamp.nanosec * 1e-9


def _seconds_to_duration(t: float) -> Duration:
    stamp = seconds_to_time(t)
    return Duration(sec=stamp.sec, nanosec=stamp.nanosec)


def encode_window(window: MotionWindow, joint_names=None, with_velocities: bool = True) -> JointTrajectory:
    """The message for ``window``. ``joint_names`` (default: the supplied joints of the window's
    mask in motor-slot order) chooses which robot joints to send and in what order."""
    window.validate()
    mask = np.asarray(window.joint_mask, dtype=bool)
    if joint_names is None:
        joint_names = [g1.JOINT_NAMES[s] for s in np.flatnonzero(mask)]
    slots = g1.slots_of(joint_names)
    unsupplied = [g1.JOINT_NAMES[s] for s in slots if not mask[s]]
    if unsupplied:
        raise ValueError(f"cannot encode joints the window does not supply (mask False): {', '.join(unsupplied)}")
    f = window.frames
    positions = np.concatenate([f.root_pos, f.root_quat, f.joint_pos[:, slots]], axis=1)
    if with_velocities:
        zero = np.zeros((len(f), 1))
        velocities = np.concatenate([f.root_lin_vel, zero, f.root_ang_vel, f.joint_vel[:, slots]], axis=1)

    msg = JointTrajectory()
    msg.header.stamp = seconds_to_time(window.start_time)
    msg.header.frame_id = FRAME_ID
    msg.joint_names = list(FLOATING_BASE_JOINTS) + list(joint_names)
    points = []
    for i in range(len(f)):
        point = JointTrajectoryPoint()
        point.positions = positions[i].tolist()
        if with_velocities:
            point.velocities = velocities[i].tolist()
        point.time_from_start = _seconds_to_duration(i * window.dt)
        points.append(point)
    msg.points = points
    return msg


def _point_arrays(msg: JointTrajectory, width: int):
    """(times (N,), positions (N,width), velocities (N,width) or None) from the points."""
    points = msg.points
    for i, p in enumerate(points):
        if len(p.positions) != width:
            raise MotionTargetError("length_mismatch", f"motion target point {i} has {len(p.positions)} positions "
                                                       f"for {width} joint_names")
    with_vel = [len(p.velocities) > 0 for p in points]
    if any(with_vel) and not all(with_vel):
        raise MotionTargetError("length_mismatch", f"motion target gives velocities on point {with_vel.index(True)} "
                                                   f"but not on point {with_vel.index(False)}: all points or none")
    if all(with_vel):
        for i, p in enumerate(points):
            if len(p.velocities) != width:
                raise MotionTargetError("length_mismatch", f"motion target point {i} has {len(p.velocities)} "
                                                           f"velocities for {width} joint_names")
    times = np.array([time_to_seconds(p.time_from_start) for p in points])
    positions = np.array([p.positions for p in points], dtype=np.float64)
    velocities = np.array([p.velocities for p in points], dtype=np.float64) if all(with_vel) else None
    return times, positions, velocities


def _check_finite(what: str, values: np.ndarray, names) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        i, j = bad[0]
        raise MotionTargetError("not_finite", f"motion target {what} of {names[j]} at point {i} is {values[i, j]}")


def decode_window(msg: JointTrajectory, dt: float = 0.02, min_horizon_s: float = 0.0,
                  conventions: ReferenceConventions | None = None) -> MotionWindow:
    """The MotionWindow a message describes, on a uniform grid of step ``dt``.

    ``min_horizon_s``: refuse windows spanning less (the policy's look-ahead). ``conventions``:
    the consuming policy contract's ``reference`` (default ``reference.PLAIN``: unit quaternions,
    central differences, interpolation).
    Raises MotionTargetError (a ValueError) naming the first problem found.
    """
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive, got {dt}")
    if msg.header.frame_id not in ("", FRAME_ID):
        raise MotionTargetError("frame_id", f"motion target frame_id is {msg.header.frame_id!r}; "
                                            f"only {FRAME_ID!r} is understood")
    if len(msg.points) < 2:
        raise MotionTargetError("too_few_points", f"motion target has {len(msg.points)} points; at least 2 are needed")
    names = list(msg.joint_names)
    base_cols, joint_cols, slots = named_columns(names)
    times, positions, velocities = _point_arrays(msg, len(names))
    _check_finite("position", positions, names)
    if velocities is not None:
        _check_finite("velocity", velocities, names)
    step = np.diff(times)
    if np.any(step <= 0):
        i = int(np.flatnonzero(step <= 0)[0])
        raise MotionTargetError("times_not_increasing",
                                f"motion target time_from_start is not strictly increasing: point {i + 1} at "
                                f"{times[i + 1]:.6f} s follows point {i} at {times[i]:.6f} s")

    quat = positions[:, base_cols[3:7]]
    norms = np.linalg.norm(quat, axis=1)
    lo, hi = QUAT_NORM_RANGE
    bad = np.flatnonzero((norms < lo) | (norms > hi))
    if bad.size:
        raise MotionTargetError("bad_quaternion", f"motion target root quaternion at point {bad[0]} has norm "
                                                  f"{norms[bad[0]]:.4f}, outside [{lo}, {hi}]; send w, x, y, z of a unit quaternion")
    conventions = conventions or reference.PLAIN
    if not conventions.as_stored:
        quat = quat / norms[:, None]

    n = int(math.floor((times[-1] - times[0]) / dt + 1e-6)) + 1
    span = (n - 1) * dt
    if n < 2 or span < min_horizon_s - 1e-9:
        raise MotionTargetError("too_short", f"motion target spans {times[-1] - times[0]:.3f} s "
                                             f"({n} frames at dt {dt:g} s) but the policy reads {min_horizon_s:.3f} s ahead")

    joint_pos = np.zeros((len(times), g1.NUM_BODY_JOINTS))
    joint_pos[:, slots] = positions[:, joint_cols]
    joint_vel = np.zeros_like(joint_pos)
    root_pos = positions[:, base_cols[:3]]
    if velocities is None:
        lin_vel, ang_vel, jv = reference.source_velocities(times, root_pos, quat, positions[:, joint_cols],
                                                           conventions, padding="edge")
    else:
        lin_vel, ang_vel, jv = velocities[:, base_cols[:3]], velocities[:, base_cols[4:7]], velocities[:, joint_cols]
    joint_vel[:, slots] = jv
    points = MotionFrames(root_pos=root_pos, root_quat=quat, root_lin_vel=lin_vel, root_ang_vel=ang_vel,
                          joint_pos=joint_pos, joint_vel=joint_vel)
    grid = times[0] + dt * np.arange(n)
    index = np.interp(grid, times, np.arange(len(times), dtype=np.float64))
    frames = points.interpolate(index)
    if conventions.velocity_sampling == "frame":  # the point at or before each grid time (1 us slack)
        at = np.searchsorted(times, grid + 1e-6, side="right") - 1
        frames.root_lin_vel, frames.root_ang_vel, frames.joint_vel = lin_vel[at], ang_vel[at], joint_vel[at]
    mask = np.zeros(g1.NUM_BODY_JOINTS, dtype=bool)
    mask[slots] = True
    window = MotionWindow(start_time=time_to_seconds(msg.header.stamp) + times[0], dt=float(dt), frames=frames,
                          joint_mask=mask)
    window.validate()
    return window
