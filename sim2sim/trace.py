"""What the simulated robot did, recorded inside the sim process, and tracking errors against a
reference recorded elsewhere (the node graph's /gmt/motion_target), matched by wall-clock time.

Recording (``SimTraceRecorder``, used by ``sim2sim.sdk_robot`` when the node runs with ``--trace``):

    rows        every ``period_s`` (20 ms) of sim time, on the sim loop thread: wall clock
                (time.time()), sim time, root position / quaternion (w, x, y, z) / linear and
                angular velocity (world), 29 joint angles, ``KEY_BODIES`` positions, gantry
                active, kind of the command the motors hold (COMMAND_KINDS)
    events      every change of command kind, on the DDS listener thread when the command is
                accepted (so exact to the message, not to the 20 ms row grid), and the gantry
                release (at the 2 ms chunk it happened)

Both are saved to one .npz on exit (``save``) and read back with ``SimTrace.load``.

Tracking errors (``tracking_errors``) are the ones of ``sim2sim.metrics`` (as ``gmt-ros eval``
computes them per tick): each trace row inside the scored interval is compared with the
reference at the row's wall time, the reference being interpolated (linear, quaternion nlerp)
between reference samples (``ReferenceSamples``: the first frames of each motion-target window;
frame 0 is the reference at the window's stamp). Rows farther than ``max_gap_s`` from a reference
sample on either side are not scored (counted). No ROS here: the runner decodes the windows.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from gmt_ros.core import g1, rotations
from sim2sim import metrics
from sim2sim.kinematics import KEY_BODIES, ReferenceKinematics

COMMAND_KINDS: tuple[str, ...] = ("none", "zero_torque", "damping", "pd")
NONE, ZERO_TORQUE, DAMPING, PD = range(4)
EVENT_GANTRY_RELEASE = -1  # event kind code of the gantry release (not a command kind)


def command_kind(kp, kd) -> int:
    """ZERO_TORQUE (kp = kd = 0 everywhere), DAMPING (kp = 0 everywhere, some kd > 0) or PD."""
    if np.any(kp):
        return PD
    return DAMPING if np.any(kd) else ZERO_TORQUE


class SimTraceRecorder:
    """Collects rows (sim loop thread) and command-kind events (DDS listener thread)."""

    def __init__(self, period_s: float = 0.02, body_names=KEY_BODIES):
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"trace period must be positive, got {period_s}")
        self.period_s = float(period_s)
        self.body_names = tuple(body_names)
        self._rows: list[tuple] = []
        self._events: list[tuple[float, float, int]] = []  # (unix time, sim time, kind)
        self._lock = threading.Lock()
        self._kind = NONE
        self._next_sample = 0.0
        self._gantry_seen_active: bool | None = None

    @property
    def kind(self) -> int:
        return self._kind

    def note_command(self, kp, kd, unix_time: float, sim_time: float) -> None:
        """An accepted command; a change of kind is an event. Cheap: called at 500 Hz."""
        kind = command_kind(kp, kd)
        if kind != self._kind:
            with self._lock:
                self._kind = kind
                self._events.append((unix_time, sim_time, kind))

    def after_chunk(self, server) -> None:
        """Called by the sim loop after each chunk: notes the gantry release, samples a row when due."""
        active = server.gantry.active
        if self._gantry_seen_active and not active:
            with self._lock:
                self._events.append((time.time(), server.sim_time, EVENT_GANTRY_RELEASE))
        self._gantry_seen_active = active
        if server.sim_time + 1e-9 >= self._next_sample:
            self._next_sample += self.period_s
            self.add(server.snapshot(), time.time())

    def add(self, snap, unix_time: float) -> None:
        """One row from a ``sdk_robot.SimSnapshot``."""
        if tuple(snap.body_names) != self.body_names:
            raise ValueError(f"snapshot bodies {snap.body_names} differ from the trace's {self.body_names}")
        row = (unix_time, snap.sim_time, snap.root_pos, snap.root_quat, snap.root_lin_vel, snap.root_ang_vel,
               snap.joint_pos, snap.body_pos, snap.gantry_active, self._kind)
        with self._lock:
            self._rows.append(row)

    def finish(self) -> SimTrace:
        with self._lock:
            rows, events = list(self._rows), list(self._events)
        n, k = len(rows), len(self.body_names)

        def col(i, shape, dtype=np.float64):
            return np.asarray([r[i] for r in rows], dtype=dtype).reshape((n,) + shape)

        ev = np.asarray(events, dtype=np.float64).reshape(len(events), 3)
        return SimTrace(
            unix_time=col(0, ()), sim_time=col(1, ()), root_pos=col(2, (3,)), root_quat=col(3, (4,)),
            root_lin_vel=col(4, (3,)), root_ang_vel=col(5, (3,)), joint_pos=col(6, (g1.NUM_BODY_JOINTS,)),
            body_pos=col(7, (k, 3)), gantry=col(8, (), bool), command_kind=col(9, (), np.int8),
            event_unix_time=ev[:, 0].copy(), event_sim_time=ev[:, 1].copy(), event_kind=ev[:, 2].astype(np.int8),
            body_names=self.body_names,
        )

    def save(self, path) -> Path:
        return self.finish().save(path)


@dataclass
class SimTrace:
    """A recorded run (see the module docstring); rows in time order."""

    unix_time: np.ndarray
    sim_time: np.ndarray
    root_pos: np.ndarray
    root_quat: np.ndarray
    root_lin_vel: np.ndarray
    root_ang_vel: np.ndarray
    joint_pos: np.ndarray
    body_pos: np.ndarray
    gantry: np.ndarray
    command_kind: np.ndarray
    event_unix_time: np.ndarray
    event_sim_time: np.ndarray
    event_kind: np.ndarray
    body_names: tuple[str, ...] = KEY_BODIES

    def __len__(self) -> int:
        return int(self.unix_time.shape[0])

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "body_names"}
        np.savez_compressed(path, body_names=np.array(self.body_names), **arrays)
        return path

    @classmethod
    def load(cls, path) -> SimTrace:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "body_names"}
            names = tuple(str(n) for n in data["body_names"])
        missing = {f.name for f in fields(cls)} - set(arrays) - {"body_names"}
        if missing:
            raise ValueError(f"{path} is not a sim trace: missing {sorted(missing)}")
        return cls(body_names=names, **arrays)

    def release_unix_time(self) -> float | None:
        """Wall time of the gantry release (None: never released, or no gantry)."""
        hits = np.flatnonzero(self.event_kind == EVENT_GANTRY_RELEASE)
        return float(self.event_unix_time[hits[0]]) if hits.size else None

    def first_command_after(self, kind: int, unix_time: float) -> float | None:
        """Wall time at which the first command of ``kind`` after ``unix_time`` was accepted,
        when that is a change of kind (an event); None if none."""
        hits = np.flatnonzero((self.event_kind == kind) & (self.event_unix_time >= unix_time))
        return float(self.event_unix_time[hits[0]]) if hits.size else None

    def kind_at(self, unix_time: float) -> int:
        """Command kind the motors held at ``unix_time`` (from the events)."""
        cmd = np.flatnonzero((self.event_kind >= 0) & (self.event_unix_time <= unix_time))
        return int(self.event_kind[cmd[-1]]) if cmd.size else NONE

    def fell_between(self, t0: float, t1: float) -> tuple[bool, float | None, float]:
        """(fell, wall time of the first fallen row, min pelvis height) over rows in [t0, t1],
        with the fall rule of ``sim2sim.metrics``."""
        rows = np.flatnonzero((self.unix_time >= t0) & (self.unix_time <= t1))
        if rows.size == 0:
            return False, None, math.nan
        rpy = rotations.to_rpy(self.root_quat[rows])
        height = self.root_pos[rows, 2]
        for i, r in enumerate(rows):
            if metrics.has_fallen(float(height[i]), float(rpy[i, 0]), float(rpy[i, 1])):
                return True, float(self.unix_time[r]), float(height.min())
        return False, None, float(height.min())


@dataclass
class ReferenceSamples:
    """The reference at known wall times: (N,) times, root pose/velocities (world), 29 joint
    angles, and which joints the reference supplies (N, 29)."""

    unix_time: np.ndarray
    root_pos: np.ndarray
    root_quat: np.ndarray
    root_lin_vel: np.ndarray
    root_ang_vel: np.ndarray
    joint_pos: np.ndarray
    joint_mask: np.ndarray

    def __len__(self) -> int:
        return int(self.unix_time.shape[0])

    @classmethod
    def from_samples(cls, samples) -> ReferenceSamples:
        """From (wall time, root_pos, root_quat, root_lin_vel, root_ang_vel, joint_pos, joint_mask)
        tuples in any order (e.g. the first frames of motion-target windows); sorted by time, a
        sample at the same time as an earlier one replaces it."""
        by_time = {float(x[0]): x for x in samples}
        ordered = [by_time[t] for t in sorted(by_time)]
        n = len(ordered)

        def column(i, width, dtype=np.float64):
            return np.asarray([x[i] for x in ordered], dtype=dtype).reshape(n, width)

        return cls(unix_time=np.asarray(sorted(by_time), dtype=np.float64), root_pos=column(1, 3),
                   root_quat=column(2, 4), root_lin_vel=column(3, 3), root_ang_vel=column(4, 3),
                   joint_pos=column(5, g1.NUM_BODY_JOINTS), joint_mask=column(6, g1.NUM_BODY_JOINTS, bool))

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **{f.name: getattr(self, f.name) for f in fields(self)})
        return path

    @classmethod
    def load(cls, path) -> ReferenceSamples:
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})

    def at(self, t: float, max_gap_s: float):
        """(root_pos, root_quat, root_lin_vel, root_ang_vel, joint_pos, joint_mask) at wall time ``t``,
        interpolated between the samples around it; None when ``t`` is outside the samples or a
        neighbouring sample is more than ``max_gap_s`` away."""
        times = self.unix_time
        j = int(np.searchsorted(times, t, side="right"))  # times[j-1] <= t < times[j]
        if j == 0 or (j == len(times) and t > times[-1]):
            return None
        if j == len(times):  # t == times[-1]
            j -= 1
        i = j - 1
        if t - times[i] < 1e-9:  # on a sample: no neighbour needed
            j = i
        elif t - times[i] > max_gap_s or times[j] - t > max_gap_s:
            return None
        u = 0.0 if j == i else (t - times[i]) / (times[j] - times[i])
        q0, q1 = self.root_quat[i], self.root_quat[j]
        if np.dot(q0, q1) < 0:
            q1 = -q1
        quat = (1 - u) * q0 + u * q1

        def lerp(a):
            return (1 - u) * a[i] + u * a[j]

        return (lerp(self.root_pos), quat / np.linalg.norm(quat), lerp(self.root_lin_vel), lerp(self.root_ang_vel),
                lerp(self.joint_pos), self.joint_mask[i] & self.joint_mask[j])


def tracking_errors(trace: SimTrace, reference: ReferenceSamples, policy_mask, t0: float, t1: float,
                    max_gap_s: float = 0.1, kinematics: ReferenceKinematics | None = None) -> dict:
    """Mean tracking errors of the trace rows with wall time in [t0, t1] against the reference,
    up to the first fallen row (as ``gmt-ros eval``: a fallen tick is not averaged).

    ``policy_mask`` (29,) bool: the joints the policy drives; E_mpjpe is over those the reference
    supplies. Returns the means of ``metrics.TrackingErrors.summary()`` plus ``ticks`` (rows
    scored), ``unmatched`` (rows without a reference sample within ``max_gap_s``), ``fell``,
    ``fall_unix_time``, ``min_pelvis_height_m`` and ``max_tilt_rad`` over the rows.
    """
    policy_mask = np.asarray(policy_mask, dtype=bool)
    if policy_mask.shape != (g1.NUM_BODY_JOINTS,):
        raise ValueError(f"policy_mask must have 29 entries, got shape {policy_mask.shape}")
    if not t1 >= t0:
        raise ValueError(f"scored interval ends ({t1}) before it starts ({t0})")
    kin = kinematics or ReferenceKinematics(body_names=trace.body_names)
    if tuple(kin.body_names) != tuple(trace.body_names):
        raise ValueError(f"kinematics bodies {kin.body_names} differ from the trace's {trace.body_names}")
    errors = metrics.TrackingErrors()
    unmatched = 0
    fall_time = None
    min_height, max_tilt = math.inf, 0.0
    for r in np.flatnonzero((trace.unix_time >= t0) & (trace.unix_time <= t1)):
        t = float(trace.unix_time[r])
        pos, quat = trace.root_pos[r], trace.root_quat[r]
        roll, pitch, _ = rotations.to_rpy(quat)
        min_height = min(min_height, float(pos[2]))
        max_tilt = max(max_tilt, abs(float(roll)), abs(float(pitch)))
        if metrics.has_fallen(float(pos[2]), float(roll), float(pitch)):
            fall_time = t
            break
        ref = reference.at(t, max_gap_s)
        if ref is None:
            unmatched += 1
            continue
        ref_pos, ref_quat, ref_lin, ref_ang, ref_q, ref_mask = ref
        ref_body = kin.body_positions(ref_pos, ref_quat, ref_q)
        errors.add(
            joint_pos=trace.joint_pos[r], ref_joint_pos=ref_q, joint_mask=policy_mask & ref_mask,
            body_rel=metrics.heading_relative(trace.body_pos[r], pos, quat),
            ref_body_rel=metrics.heading_relative(ref_body, ref_pos, ref_quat),
            root_vel_heading=metrics.in_heading_frame(trace.root_lin_vel[r], quat),
            ref_root_vel_heading=metrics.in_heading_frame(ref_lin, ref_quat),
            yaw_rate=float(trace.root_ang_vel[r][2]), ref_yaw_rate=float(ref_ang[2]),
        )
    return errors.summary() | {
        "ticks": len(errors.mpjpe), "unmatched": unmatched, "fell": fall_time is not None,
        "fall_unix_time": fall_time, "min_pelvis_height_m": min_height if math.isfinite(min_height) else math.nan,
        "max_tilt_rad": max_tilt,
    }
