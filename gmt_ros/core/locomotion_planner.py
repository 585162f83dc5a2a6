"""Velocity command -> reference motion, by motion matching over locomotion clips.

The planner turns a planar velocity command (``velocity_command``) into a continuous reference
motion and hands out its next ``window_s`` seconds as a ``MotionWindow`` whenever asked
(``window(now, target)``), forever. No ROS here: ``gmt_ros.nodes.planner_node`` wires it to
topics, ``sim2sim.planner_eval`` drives it in the offline loop.

How a frame is made (one frame per ``dt``, 0.02 s):

1. The followed velocity ramps towards the target within the acceleration limits.
2. Playback: the reference plays a stream of frames of one clip of the database
   (``motion_matching.MotionDatabase``), one frame per step. During a transition it plays two
   streams, the old one continuing, and cross-fades them (quintic smoothstep over ``blend_s``:
   leg angles, pelvis height and tilt, and the step from frame to frame are mixed, so nothing
   jumps and both legs keep their gait; the streams are chosen with matching feet). Waist and
   arms (the clips carry them differently) are inertialized instead: the new stream's, plus the
   offset from where they were, decaying over ``upper_blend_s``, so a longer ease for the arms
   does not hold up the next search.
3. Root motion: each frame's step (dx, dy, dyaw in its heading frame) is applied at the
   reference's current world heading, so the path is integrated, never looked up. The step is
   *warped* by the difference between the commanded velocity and the clip's own gait-cycle mean
   velocity (``MotionDatabase.mean_vel``), bounded per axis by ``warp_max_speed`` /
   ``warp_max_yaw_rate``: this is how commands the clips do not contain exactly (0.2 m/s
   sideways, slow turns on the spot) are met. Within the bound the reference's mean velocity
   equals the command; the feet then slip by the warp (the legs keep the clip's stride), which
   ``planner_report`` measures.
4. Search, every ``search_interval_s`` when not blending, at once when the target changes, and
   whenever the stream runs out of walking frames: the query is the commanded future trajectory
   (the ramped velocity integrated ``TRAJECTORY_OFFSETS_S`` ahead, from the current heading)
   plus the current feet and pelvis velocity. The best frame elsewhere replaces the stream when
   it is better than continuing by ``switch_margin``.
5. Standing: when the command has been zero for ``stand_after_s`` the reference blends (over
   ``stand_blend_s``) into the standing frame (default pose, level) and stays there until a
   command moves it.

Windows: the planner keeps its planned future, frame by frame, with the state that produced
each frame. Time moves the plan on; a new target (beyond ``replan_deadband``) keeps the current
frame and re-plans everything after it. So a steady command costs one frame per step and a
changed one a re-plan of ``window_s``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.motion_matching import TRAJECTORY_OFFSETS_S, MotionDatabase, Query
from gmt_ros.core.playback import ease
from gmt_ros.core.velocity_command import VelocityLimits

_ALL_JOINTS = np.ones(g1.NUM_BODY_JOINTS, dtype=bool)
_LEG_JOINTS = np.arange(g1.NUM_BODY_JOINTS) < 12  # slots 0-11


@dataclass(frozen=True)
class PlannerSettings:
    dt: float = 0.02                # frame step (the policies' control step)
    window_s: float = 2.4           # length of each window (GMT reads 1.9 s ahead + 0.5 s window age)
    search_interval_s: float = 0.2  # how often the database is searched while walking
    blend_s: float = 0.3            # cross-fade between two streams: legs and root
    upper_blend_s: float = 0.6      # waist and arms: the step to the new stream decays over this long
    stand_blend_s: float = 0.6      # cross-fade into the standing frame
    stand_after_s: float = 0.3      # zero command this long -> blend to standing
    switch_margin: float = 0.1      # a new stream must beat continuing by this much (feature cost)
    neighbourhood_s: float = 0.3    # frames of the playing clip this close are "continuing", not a switch
    warp_max_speed: float = 0.4     # m/s: bound of the root-velocity warp, per axis
    warp_max_yaw_rate: float = 0.6  # rad/s: bound of the yaw-rate warp
    bias_time_s: float = 1.0        # low-pass of the played-minus-mean velocity (see _next_state)
    gait_speed_floor: float = 0.45  # m/s: slower translation commands search for gaits this fast (see gait_velocity)
    replan_deadband: float = 0.02   # m/s or rad/s: smaller target changes keep the plan
    correction_deadband: float = 0.05  # m/s or rad/s: smaller feedback corrections keep the plan

    def __post_init__(self):
        for name in ("dt", "window_s", "search_interval_s", "blend_s", "upper_blend_s", "stand_blend_s", "neighbourhood_s",
                     "bias_time_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"planner setting {name} must be positive, got {value}")
        for name in ("stand_after_s", "switch_margin", "warp_max_speed", "warp_max_yaw_rate", "replan_deadband",
                     "gait_speed_floor", "correction_deadband"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"planner setting {name} must be >= 0, got {value}")
        if self.window_s < 2 * self.dt:
            raise ValueError(f"window_s {self.window_s} must span at least two frames of {self.dt}")

    @property
    def window_frames(self) -> int:
        return int(math.floor(self.window_s / self.dt + 1e-9)) + 1


class _State:
    """The planner after producing one frame (see the module docstring)."""

    __slots__ = (
        "a",
        "arm_k",
        "arm_n",
        "arm_offset",
        "b",
        "bias",
        "blend_k",
        "blend_n",
        "correction",
        "search_now",
        "since_search",
        "t",
        "target",
        "v",
        "warp",
        "x",
        "y",
        "yaw",
        "zero_for",
    )
    t: float  # time of the last frame
    a: int  # global frame of stream a (followed)
    b: int  # global frame of stream b (blended in), -1 when not blending
    blend_k: int
    blend_n: int
    arm_offset: np.ndarray  # (29,) upper-body inertialization offset
    arm_k: int
    arm_n: int
    x: float
    y: float
    yaw: float
    v: np.ndarray  # (3,) followed velocity vx, vy, wz
    target: np.ndarray
    warp: np.ndarray
    bias: np.ndarray
    correction: np.ndarray
    since_search: int
    zero_for: int
    search_now: bool

    def copy(self) -> _State:
        s = _State.__new__(_State)
        for name in _State.__slots__:
            setattr(s, name, getattr(self, name))
        return s

    @property
    def weight(self) -> float:
        """Cross-fade weight of stream b for the legs and the root (0 when not blending)."""
        if self.b < 0:
            return 0.0
        u = min(self.blend_k / self.blend_n, 1.0)
        return u * u * u * (10.0 + u * (-15.0 + 6.0 * u))


def commanded_trajectory(v0: np.ndarray, target: np.ndarray, accel: np.ndarray, dt: float,
                         offsets_s=TRAJECTORY_OFFSETS_S) -> tuple[np.ndarray, np.ndarray]:
    """Future root positions (K, 2) and heading directions (K, 2) at ``offsets_s`` in the current
    heading frame, when the velocity ramps from ``v0`` to ``target`` (vx, vy, wz) within
    ``accel`` per second, one step of ``dt`` at a time (as the planner follows it)."""
    n = int(round(max(offsets_s) / dt))
    k = np.arange(n)[:, None] * dt
    gap = np.asarray(target, dtype=np.float64) - v0
    v = v0 + np.clip(gap, -accel * k, accel * k)  # velocity during step k -> k+1
    yaw = np.concatenate([[0.0], np.cumsum(v[:, 2] * dt)])
    c, s = np.cos(yaw[:-1]), np.sin(yaw[:-1])
    dx = (c * v[:, 0] - s * v[:, 1]) * dt
    dy = (s * v[:, 0] + c * v[:, 1]) * dt
    pos = np.stack([np.concatenate([[0.0], np.cumsum(dx)]), np.concatenate([[0.0], np.cumsum(dy)])], axis=-1)
    idx = [int(round(o / dt)) for o in offsets_s]
    return pos[idx], np.stack([np.cos(yaw[idx]), np.sin(yaw[idx])], axis=-1)


def gait_velocity(v: np.ndarray, floor: float, warp_bound: float) -> np.ndarray:
    """The velocity to search the clips for when ``v`` is commanded: a slow translation (below
    ``floor``) is searched at the floor speed in the same direction, at most ``warp_bound`` above
    ``v`` so that the warp can still bring the root back down to ``v``. The robot moves by
    stepping, and the clips step at their natural speeds (the slowest sidesteps go 0.5 m/s):
    a query for 0.2 m/s finds frames that barely step, which the policy does not move with even
    when the root is pushed along, while a sidestep slowed by the warp moves it at the command
    (measured: docs/PLANNER.md)."""
    speed = math.hypot(v[0], v[1])
    if speed <= 1e-6 or speed >= floor:
        return v
    out = np.array(v, dtype=np.float64)
    out[:2] *= min(floor, speed + warp_bound) / speed
    return out


class LocomotionPlanner:
    """See the module docstring. Times are seconds on the caller's clock."""

    def __init__(self, database: MotionDatabase, settings: PlannerSettings | None = None,
                 limits: VelocityLimits | None = None):
        settings = settings if settings is not None else PlannerSettings()
        limits = limits if limits is not None else VelocityLimits()
        if abs(database.dt - settings.dt) > 1e-12:
            raise ValueError(f"database step {database.dt} differs from the planner's dt {settings.dt}")
        self.db = database
        self.settings = settings
        self.limits = limits
        dt = settings.dt
        self._accel = limits.accel
        self._search_every = max(1, int(round(settings.search_interval_s / dt)))
        self._blend_n = max(1, int(round(settings.blend_s / dt)))
        self._stand_blend_n = max(1, int(round(settings.stand_blend_s / dt)))
        self._upper_blend_n = max(1, int(round(settings.upper_blend_s / dt)))
        self._stand_after = int(round(settings.stand_after_s / dt))
        self._neighbourhood = int(round(settings.neighbourhood_s / dt))
        self._bias_gain = min(1.0, dt / settings.bias_time_s)
        self._warp_bound = np.array([settings.warp_max_speed, settings.warp_max_speed, settings.warp_max_yaw_rate])
        # per-frame scalars as Python tuples: the step loop reads a few per frame
        self._step = [tuple(r) for r in database.step.tolist()]
        self._mean_vel = database.mean_vel
        self._next = database.next_of.tolist()
        self._searchable = database.searchable.tolist()
        self._plan: list[_State] = []
        self.searches = 0
        self.switches = 0

    # ------------------------------------------------------------------ public

    def reset(self, now: float, x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> None:
        """Start standing at (x, y, yaw) at ``now``, commanded velocity zero."""
        s = _State()
        s.t, s.a, s.b, s.blend_k, s.blend_n = float(now), self.db.standing, -1, 0, 1
        s.arm_offset, s.arm_k, s.arm_n = np.zeros(g1.NUM_BODY_JOINTS), 0, 1
        s.x, s.y, s.yaw = float(x), float(y), float(yaw)
        s.v, s.target, s.warp, s.bias = np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3)
        s.correction = np.zeros(3)
        s.since_search, s.zero_for, s.search_now = 0, self._stand_after, False
        self._plan = [s]

    def window(self, now: float, target: np.ndarray, correction: np.ndarray | None = None) -> MotionWindow:
        """The next ``window_s`` of the reference from the plan's frame at or just before ``now``,
        following ``target`` (vx, vy, wz, already checked and clamped) from now on.
        ``correction`` (velocity feedback) is added to the root velocity the warp aims at, not to
        what the clips are searched for; a change beyond ``correction_deadband`` re-plans."""
        if not math.isfinite(now):
            raise ValueError(f"planner time must be finite, got {now}")
        target = np.asarray(target, dtype=np.float64).reshape(3)
        if not self._plan:
            self.reset(now)
        self._advance(now)
        head = self._plan[0]
        correction = np.zeros(3) if correction is None else np.asarray(correction, dtype=np.float64).reshape(3)
        if np.max(np.abs(correction - head.correction)) > self.settings.correction_deadband:
            head.correction = correction.copy()
            del self._plan[1:]
        if np.max(np.abs(target - head.target)) > self.settings.replan_deadband or (
                not np.array_equal(target, head.target) and not np.any(target)):
            head.target = target.copy()  # from this frame on: re-plan everything after it
            head.search_now = True
            del self._plan[1:]
        n = self.settings.window_frames
        while len(self._plan) < n:
            self._plan.append(self._next_state(self._plan[-1]))
        return self._frames(self._plan[:n])

    @property
    def current(self) -> dict:
        """What the reference is doing now (for status messages and logs)."""
        if not self._plan:
            return {}
        s = self._plan[0]
        playing = s.b if s.b >= 0 else s.a
        return {
            "stream": self.db.describe(playing),
            "standing": playing == self.db.standing,
            "blending": s.b >= 0,
            "velocity": [round(float(v), 4) for v in s.v],
            "target": [round(float(v), 4) for v in s.target],
            "warp": [round(float(v), 4) for v in s.warp],
            "heading": round(float(s.yaw), 4),
            "searches": self.searches,
            "switches": self.switches,
        }

    # ------------------------------------------------------------------ plan

    def _advance(self, now: float) -> None:
        dt = self.settings.dt
        k = int(math.floor((now - self._plan[0].t) / dt + 1e-6))
        if k <= 0:
            return
        longest = int(round(60.0 / dt))  # a stalled caller: do not simulate more than a minute
        if k > longest:
            last = self._plan[-1]
            self._plan = [last]
            last.t = now - ((now - last.t) % dt)
            return
        while len(self._plan) <= k:
            self._plan.append(self._next_state(self._plan[-1]))
        del self._plan[:k]

    def _next_state(self, s: _State) -> _State:
        dt = self.settings.dt
        n = s.copy()
        n.t = s.t + dt
        n.v = s.v + np.clip(s.target - s.v, -self._accel * dt, self._accel * dt)
        n.zero_for = s.zero_for + 1 if not (np.any(s.target) or np.any(n.v)) else 0
        n.search_now = False
        # root motion of this step: the streams' steps, mixed, plus the warp, at the world heading
        w = s.weight
        sa = self._step[s.a]
        if s.b >= 0:
            sb = self._step[s.b]
            dx, dy, dyaw = (sa[i] + w * (sb[i] - sa[i]) for i in range(3))
        else:
            dx, dy, dyaw = sa
        # how far the frames played fall short of their clip's gait-cycle mean (jumping between
        # streams plays other stretches than the mean assumes), low-passed over bias_time_s
        played = np.array([dx, dy, dyaw]) / dt
        n.bias = s.bias + self._bias_gain * (played - self._mix_mean(s) - s.bias)
        dx += s.warp[0] * dt
        dy += s.warp[1] * dt
        dyaw += s.warp[2] * dt
        c, si = math.cos(s.yaw), math.sin(s.yaw)
        n.x = s.x + c * dx - si * dy
        n.y = s.y + si * dx + c * dy
        n.yaw = s.yaw + dyaw
        # playback
        n.a = self._next[s.a]
        if s.b >= 0:
            n.b = self._next[s.b]
            n.blend_k = s.blend_k + 1
            if n.blend_k >= n.blend_n:
                n.a, n.b, n.blend_k = n.b, -1, 0
        if n.a < 0 or (n.b < 0 and s.b < 0 and self._next[n.a] < 0):
            raise RuntimeError("planner stream ran past the end of its clip (the search must switch before)")
        n.since_search = s.since_search + 1
        n.arm_k = min(s.arm_k + 1, s.arm_n)
        if n.b < 0:
            self._maybe_switch(n, forced=s.search_now)
        n.warp = self._warp(n)
        return n

    def _mix_mean(self, s: _State) -> np.ndarray:
        mean = self._mean_vel[s.a]
        if s.b >= 0:
            mean = mean + s.weight * (self._mean_vel[s.b] - mean)
        return mean

    def _warp(self, s: _State) -> np.ndarray:
        """Bounded commanded-minus-played mean velocity, scaled by the share of the mix that walks
        (the standing frame is never pushed along: it would glide)."""
        walking = 0.0 if s.a == self.db.standing else 1.0
        if s.b >= 0:
            walking += s.weight * ((0.0 if s.b == self.db.standing else 1.0) - walking)
        if walking == 0.0:
            s.bias = np.zeros(3)
            return np.zeros(3)
        goal = s.v + s.correction if np.any(s.target) else s.v
        return walking * np.clip(goal - self._mix_mean(s) - s.bias, -self._warp_bound, self._warp_bound)

    def _maybe_switch(self, s: _State, forced: bool) -> None:
        db = self.db
        standing = s.a == db.standing
        if s.zero_for >= self._stand_after:
            if not standing:
                self._start_blend(s, db.standing, self._stand_blend_n, self._stand_blend_n)
            return
        running_out = not self._searchable[s.a]  # also: standing while a command asks to move
        if not (forced or running_out or s.since_search >= self._search_every):
            return
        s.since_search = 0
        self.searches += 1
        floor, bound = self.settings.gait_speed_floor, self.settings.warp_max_speed
        positions, directions = commanded_trajectory(gait_velocity(s.v, floor, bound), gait_velocity(s.target, floor, bound),
                                                     self._accel, self.settings.dt)
        query = Query(positions, directions, db.pose_features(s.a))
        keep = math.inf if running_out else db.cost(query, s.a)
        c = int(db.clip_of[s.a])
        first, last = db.start_of[c], db.start_of[c] + len(db.clips[c]) - 1
        exclude = (max(first, s.a - self._neighbourhood), min(last, s.a + self._neighbourhood))
        best, cost = db.best(query, exclude=exclude)
        if cost + self.settings.switch_margin < keep:
            self._start_blend(s, best, self._blend_n, self._upper_blend_n)

    def _start_blend(self, s: _State, to: int, frames: int, upper_frames: int) -> None:
        # waist and arms: inertialization. The new stream's upper body plus the offset from where
        # the reference's upper body is now, decaying to zero over upper_frames (independent of the
        # legs' cross-fade, so the next search need not wait for it)
        playing = s.b if s.b >= 0 else s.a
        now_upper = self.db.joint_pos[playing] + s.arm_offset * self._arm_decay(s.arm_k, s.arm_n)
        s.arm_offset = np.where(_LEG_JOINTS, 0.0, now_upper - self.db.joint_pos[to])
        s.arm_k, s.arm_n = 0, upper_frames
        s.b, s.blend_k, s.blend_n = to, 0, frames
        self.switches += 1

    @staticmethod
    def _arm_decay(k: int, n: int) -> float:
        u = min(k / n, 1.0)
        return 1.0 - u * u * u * (10.0 + u * (-15.0 + 6.0 * u))

    # ------------------------------------------------------------------ output

    def _frames(self, plan: list[_State]) -> MotionWindow:
        db, dt = self.db, self.settings.dt
        n = len(plan)
        a = np.fromiter((s.a for s in plan), dtype=np.int64, count=n)
        b_raw = np.fromiter((s.b for s in plan), dtype=np.int64, count=n)
        b = np.where(b_raw >= 0, b_raw, a)
        blending = b_raw >= 0
        k = np.fromiter((s.blend_k for s in plan), dtype=np.float64, count=n)
        legs_n = np.fromiter((s.blend_n for s in plan), dtype=np.float64, count=n)
        w, dw = ease(np.where(blending, k / legs_n, 0.0))
        dw = np.where(blending, dw / (legs_n * dt), 0.0)
        arm_n = np.fromiter((s.arm_n for s in plan), dtype=np.float64, count=n)
        settled, dsettled = ease(np.fromiter((s.arm_k for s in plan), dtype=np.float64, count=n) / arm_n)
        offset = np.array([s.arm_offset for s in plan])
        x = np.fromiter((s.x for s in plan), dtype=np.float64, count=n)
        y = np.fromiter((s.y for s in plan), dtype=np.float64, count=n)
        yaw = np.fromiter((s.yaw for s in plan), dtype=np.float64, count=n)
        warp = np.array([s.warp for s in plan])

        def mix(arr):
            return arr[a] + w.reshape((n,) + (1,) * (arr.ndim - 1)) * (arr[b] - arr[a])

        # legs: cross-fade of the two streams; waist and arms: the newer stream plus the decaying offset
        joint_pos = np.where(_LEG_JOINTS, mix(db.joint_pos), db.joint_pos[b] + offset * (1.0 - settled)[:, None])
        joint_vel = np.where(_LEG_JOINTS, mix(db.joint_vel) + dw[:, None] * (db.joint_pos[b] - db.joint_pos[a]),
                             db.joint_vel[b] - offset * (dsettled / (arm_n * dt))[:, None])
        height = mix(db.height)
        local_quat = rotations.slerp(db.local_quat[a], db.local_quat[b], w)
        lin_h = mix(db.lin_vel)
        lin_h[:, :2] += warp[:, :2]
        lin_h[:, 2] += dw * (db.height[b] - db.height[a])
        ang_h = mix(db.ang_vel)
        ang_h[:, 2] += warp[:, 2]
        zeros = np.zeros(n)
        yaw_q = np.stack([np.cos(yaw / 2), zeros, zeros, np.sin(yaw / 2)], axis=-1)
        frames = MotionFrames(
            root_pos=np.stack([x, y, height], axis=-1),
            root_quat=rotations.normalize(rotations.multiply(yaw_q, local_quat)),
            root_lin_vel=rotations.rotate(yaw_q, lin_h),
            root_ang_vel=rotations.rotate(yaw_q, ang_h),
            joint_pos=joint_pos,
            joint_vel=joint_vel,
        )
        # Every joint is sent: a 23-joint clip's wrists are 0, the default pose's wrists.
        return MotionWindow(start_time=plan[0].t, dt=dt, frames=frames, joint_mask=_ALL_JOINTS.copy(),
                            clip_name="planner", clip_time=plan[0].t)


def settings_from(values: dict) -> PlannerSettings:
    """PlannerSettings from a dict of some of its fields (e.g. ROS parameters); unknown keys are errors."""
    known = set(PlannerSettings.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown planner settings {sorted(unknown)}; known: {sorted(known)}")
    return replace(PlannerSettings(), **{k: float(v) for k, v in values.items()})
