"""The motion player's state machine: which reference the robot should follow at any time.

Commands (``play``, ``queue``, ``loop``, ``play_next``, ``stop``, ``set_loop``) change the plan;
``window(now)`` returns the MotionWindow of the next ``n`` frames of that plan, crossing planned
transitions (clip end -> next clip / loop / blend out) inside the window, so the consumer never
sees a window that ends early at a clip boundary.

The plan is a chain of segments, each with a state the status reports:

- ``idle``: a standing reference at the default pose (``g1.DEFAULT_POSE`` unless given) with the
  root at ``standing_height`` above the ground, level, keeping the heading and x, y it came from.
- ``blending_in``: joints ease from where the robot is (the last ``observe_joints``; the current
  reference if the robot's joints are unknown) to the clip's first frame, root height and
  roll/pitch ease to the clip's, over ``blend_in_s``. The clip does not advance during the blend:
  the robot is not asked to walk while its legs are still moving into the clip's first pose, and
  the whole clip is then played.
- ``playing``: the clip, frame for frame, prepared by the policy contract's reference conventions
  (``conventions``: velocities, stored or unit quaternions; see ``gmt_ros.core.reference``).
- ``blending_out``: from wherever the reference is (end of clip, or the moment of ``stop``) to the
  standing reference over ``blend_out_s``, then ``idle``.

Root placement: every clip is re-anchored when it starts, so that its first frame has the x, y
and heading of the reference at that moment (a rotation about z and a shift; height, roll, pitch
and joint angles are untouched). The policies only observe root height, roll, pitch, root-frame
velocities and joints, so the anchoring changes nothing they see; it keeps the reference
continuous in the world frame (loops walk on instead of jumping back, a visualiser shows one
path). Between two repetitions of a looped clip the player blends like between two clips.
Exception: for a policy that reads the clip's stored, non-unit quaternions (GMT's contract) the
root-frame velocity it sees depends on the clip's heading in the world (see ``_may_turn``), so the
clip keeps its own heading (only shifted), and the reference turns to it when the blend-in starts.

Blends use the quintic smoothstep 10u^3 - 15u^4 + 6u^5 (zero velocity and acceleration at both
ends); their velocities are the exact time derivatives of the blended positions. A stored
(non-unit) clip quaternion keeps its norm through anchoring, and blends ease the norm linearly
from one end to the other, so what the policy reads from it never jumps.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.motion import MotionClip, load_clip
from gmt_ros.core.reference import ReferenceConventions, slerp_keep_norm

# Pelvis height of the Menagerie G1 standing at g1.DEFAULT_POSE with both soles on the ground:
# 0.779 m, measured with MuJoCo (test_playback checks it). The clips' standing frames are at
# 0.77-0.80 m; the zero pose (straight knees) would be 0.792 m.
STANDING_HEIGHT = 0.78

IDLE, BLENDING_IN, PLAYING, BLENDING_OUT = "idle", "blending_in", "playing", "blending_out"
_FRAME_FIELDS = ("root_pos", "root_quat", "root_lin_vel", "root_ang_vel", "joint_pos", "joint_vel")
_ALL_JOINTS = np.ones(g1.NUM_BODY_JOINTS, dtype=bool)


def ease(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quintic smoothstep and its derivative on u in [0, 1] (clamped)."""
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    s = u * u * u * (10.0 + u * (-15.0 + 6.0 * u))
    ds = 30.0 * u * u * (1.0 - u) ** 2
    return s, ds


def _concat(parts: list[MotionFrames]) -> MotionFrames:
    return MotionFrames(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in _FRAME_FIELDS})


def _repeat(frame: MotionFrames, n: int) -> MotionFrames:
    """n copies of a one-frame MotionFrames."""
    return MotionFrames(**{k: np.repeat(getattr(frame, k)[:1], n, axis=0) for k in _FRAME_FIELDS})


def _yaw(q: np.ndarray) -> float:
    return float(rotations.to_rpy(rotations.normalize(q))[..., 2].reshape(-1)[0])


@dataclass(frozen=True)
class Anchor:
    """world = Rz(yaw) (clip - clip_origin) + world_origin for positions; Rz(yaw) q for orientations."""

    yaw: float
    clip_origin: np.ndarray  # (3,), z = 0
    world_origin: np.ndarray  # (3,), z = 0

    @classmethod
    def aligning(cls, clip_frame: MotionFrames, reference: MotionFrames) -> Anchor:
        """The anchor that puts the clip frame's x, y and heading onto the reference frame's."""
        yaw = _yaw(reference.root_quat[0]) - _yaw(clip_frame.root_quat[0])
        clip_origin = np.array([clip_frame.root_pos[0, 0], clip_frame.root_pos[0, 1], 0.0])
        world_origin = np.array([reference.root_pos[0, 0], reference.root_pos[0, 1], 0.0])
        return cls(float(yaw), clip_origin, world_origin)

    def apply(self, frames: MotionFrames) -> MotionFrames:
        q_yaw = np.array([math.cos(self.yaw / 2), 0.0, 0.0, math.sin(self.yaw / 2)])
        return MotionFrames(
            root_pos=rotations.rotate(q_yaw, frames.root_pos - self.clip_origin) + self.world_origin,
            root_quat=rotations.multiply(q_yaw, frames.root_quat),  # unit q_yaw: keeps a stored norm
            root_lin_vel=rotations.rotate(q_yaw, frames.root_lin_vel),
            root_ang_vel=rotations.rotate(q_yaw, frames.root_ang_vel),
            joint_pos=np.array(frames.joint_pos),
            joint_vel=np.array(frames.joint_vel),
        )


class _Segment:
    """A stretch of the plan from ``start`` to ``end`` (seconds on the caller's clock)."""

    state = IDLE
    clip: MotionClip | None = None
    name = ""  # the clip's library name
    mask = _ALL_JOINTS

    def __init__(self, start: float, end: float):
        self.start, self.end = float(start), float(end)

    def frames(self, times: np.ndarray) -> MotionFrames:
        raise NotImplementedError

    def clip_time(self, t: float) -> float:
        return 0.0


class _Idle(_Segment):
    def __init__(self, start: float, frame: MotionFrames):
        super().__init__(start, math.inf)
        self.frame = frame

    def frames(self, times):
        return _repeat(self.frame, len(times))


class _Blend(_Segment):
    """Ease from ``source`` to ``target`` (one frame each). Blending in, ``clip``/``anchor`` say
    what plays next."""

    def __init__(self, state: str, start: float, duration: float, source: MotionFrames, target: MotionFrames,
                 clip: MotionClip | None = None, anchor: Anchor | None = None, name: str = ""):
        super().__init__(start, start + duration)
        self.state, self.duration = state, float(duration)
        self.source, self.target, self.clip, self.anchor, self.name = source, target, clip, anchor, name
        self.mask = clip.joint_mask if clip is not None else _ALL_JOINTS
        rel = rotations.multiply(target.root_quat[0], rotations.conjugate(source.root_quat[0]))
        # world-frame rotation vector from source to target orientation (slerp's constant rate axis)
        self._rotvec = rotations.angular_velocity(np.array([1.0, 0.0, 0.0, 0.0]), rel, 1.0)

    def frames(self, times):
        u = (np.asarray(times, dtype=np.float64) - self.start) / self.duration
        s, ds = ease(u)
        rate = (ds / self.duration)[:, None]
        src, tgt = self.source, self.target

        def mix(name):
            a, b = getattr(src, name)[0], getattr(tgt, name)[0]
            return a + s[:, None] * (b - a), rate * (b - a)

        root_pos, root_lin_vel = mix("root_pos")
        joint_pos, joint_vel = mix("joint_pos")
        n = len(s)
        root_quat = slerp_keep_norm(np.broadcast_to(src.root_quat[0], (n, 4)), np.broadcast_to(tgt.root_quat[0], (n, 4)), s)
        return MotionFrames(root_pos=root_pos, root_quat=root_quat, root_lin_vel=root_lin_vel,
                            root_ang_vel=rate * self._rotvec, joint_pos=joint_pos, joint_vel=joint_vel)


class _Play(_Segment):
    state = PLAYING
    clip: MotionClip

    def __init__(self, start: float, clip: MotionClip, anchor: Anchor, name: str,
                 conventions: ReferenceConventions | None = None):
        super().__init__(start, start + clip.duration)
        self.clip, self.anchor, self.mask, self.name = clip, anchor, clip.joint_mask, name
        self.conventions = conventions

    def frames(self, times):
        return self.anchor.apply(self.clip.sample(np.asarray(times) - self.start, self.conventions))

    def clip_time(self, t: float) -> float:
        return float(min(max(t - self.start, 0.0), self.clip.duration))


def standing_frame(source: MotionFrames, standing_height: float = STANDING_HEIGHT,
                   default_pose: np.ndarray | None = None) -> MotionFrames:
    """The standing frame below ``source``'s (first frame) x, y, with its heading."""
    pose = g1.DEFAULT_POSE if default_pose is None else default_pose
    pos = np.array([[source.root_pos[0, 0], source.root_pos[0, 1], standing_height]])
    zeros3 = np.zeros((1, 3))
    return MotionFrames(root_pos=pos, root_quat=rotations.yaw_quat(rotations.normalize(source.root_quat[:1])), root_lin_vel=zeros3,
                        root_ang_vel=zeros3.copy(), joint_pos=np.array(pose, dtype=np.float64)[None].copy(),
                        joint_vel=np.zeros((1, g1.NUM_BODY_JOINTS)))


def ease_to_standing(window: MotionWindow, now: float, blend_s: float, horizon_s: float, dt: float,
                     pose: np.ndarray) -> MotionWindow:
    """What a consumer follows once its motion producer has gone quiet: from ``window``'s reference
    at ``now`` (the joints it does not supply from ``pose``) to standing in ``pose`` (the policy's
    default pose, held joints at their targets) over ``blend_s``, then standing, far enough to
    cover ``horizon_s`` of look-ahead."""
    source = window.sample(now)
    unsupplied = ~window.joint_mask
    source.joint_pos[0, unsupplied] = np.asarray(pose)[unsupplied]  # no data: ease from standing
    n = int(math.ceil((blend_s + horizon_s) / dt)) + 2
    return settle_to_standing(source, now, blend_s, n, dt, default_pose=pose)


def settle_to_standing(source: MotionFrames, start: float, duration: float, n: int, dt: float,
                       standing_height: float = STANDING_HEIGHT, default_pose: np.ndarray | None = None) -> MotionWindow:
    """A window from ``start``: ease from ``source`` (one frame, every joint set) to standing below
    it over ``duration`` (the player's blend), then stand. What a consumer follows once its motion
    producer has gone quiet: a safe pose, reached without a jump."""
    target = standing_frame(source, standing_height, default_pose)
    blend = _Blend(BLENDING_OUT, start, duration, source, target)
    times = start + dt * np.arange(int(n))
    moving = times < blend.end
    parts = [blend.frames(times[moving])] if np.any(moving) else []
    if not np.all(moving):
        parts.append(_repeat(target, int(np.count_nonzero(~moving))))
    return MotionWindow(start_time=float(start), dt=float(dt), frames=_concat(parts),
                        joint_mask=np.ones(g1.NUM_BODY_JOINTS, dtype=bool))


class MotionPlayer:
    """Plays clips from a library as a continuous reference; see the module docstring.

    ``library`` maps clip names to files (``clip_library.list_clips()``); ``load`` reads one file
    (``motion.load_clip``); ``conventions`` prepare the clips for the policy (its contract's
    ``reference``; default ``scoring``). Unknown names raise ValueError naming the closest known names and
    change nothing. Times are seconds on the caller's clock; a time before the current segment's
    start (a clock stepped back) evaluates that segment's first frame instead of failing.
    """

    def __init__(self, library: Mapping[str, str | Path], blend_in_s: float = 1.0, blend_out_s: float = 1.0,
                 standing_height: float = STANDING_HEIGHT, default_pose: np.ndarray | None = None,
                 load: Callable[[str | Path], MotionClip] = load_clip,
                 conventions: ReferenceConventions | None = None):
        for label, value in (("blend_in_s", blend_in_s), ("blend_out_s", blend_out_s), ("standing_height", standing_height)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"MotionPlayer: {label} must be positive, got {value}")
        pose = g1.DEFAULT_POSE if default_pose is None else np.asarray(default_pose, dtype=np.float64)
        if pose.shape != (g1.NUM_BODY_JOINTS,) or not np.all(np.isfinite(pose)):
            raise ValueError(f"MotionPlayer: default_pose must be 29 finite joint angles, got shape {pose.shape}")
        self.library = dict(library)
        self.blend_in_s, self.blend_out_s = float(blend_in_s), float(blend_out_s)
        self.standing_height = float(standing_height)
        self.default_pose = pose.copy()
        self._load = load
        self.conventions = conventions
        self._clips: dict[str, MotionClip] = {}
        self._queue: list[str] = []  # library names, each already loaded
        self.loop = False
        self._robot_joints: np.ndarray | None = None
        origin = MotionFrames(root_pos=np.zeros((1, 3)), root_quat=np.array([[1.0, 0.0, 0.0, 0.0]]),
                              root_lin_vel=np.zeros((1, 3)), root_ang_vel=np.zeros((1, 3)),
                              joint_pos=self.default_pose[None].copy(), joint_vel=np.zeros((1, g1.NUM_BODY_JOINTS)))
        self._current: _Segment = _Idle(-math.inf, self._standing(origin))

    # ------------------------------------------------------------------ commands

    def resolve(self, name: str) -> str:
        """The library name for ``name``: itself, or the one library name whose last
        '/'-component it is ("walk_stand" -> "gmt/walk_stand")."""
        if name in self.library:
            return name
        matches = [n for n in self.library if n.rsplit("/", 1)[-1] == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ValueError(f"clip name {name!r} is ambiguous: {', '.join(sorted(matches))}")
        bare = {n.rsplit("/", 1)[-1]: n for n in self.library}
        close = difflib.get_close_matches(name, list(self.library) + list(bare), n=3, cutoff=0.6)
        close = sorted({bare.get(c, c) for c in close})
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown clip {name!r}{hint} (known: {', '.join(sorted(self.library)) or 'none'})")

    def clip(self, name: str) -> MotionClip:
        """The clip called ``name`` (see ``resolve``; loaded once, then cached)."""
        name = self.resolve(name)
        if name not in self._clips:
            self._clips[name] = self._load(self.library[name])
        return self._clips[name]

    def observe_joints(self, joint_pos: np.ndarray | None) -> None:
        """The robot's current joint positions (29, slot order), or None when unknown/stale;
        blends started by a command begin exactly there."""
        if joint_pos is None:
            self._robot_joints = None
            return
        q = np.asarray(joint_pos, dtype=np.float64)
        if q.shape != (g1.NUM_BODY_JOINTS,) or not np.all(np.isfinite(q)):
            raise ValueError(f"observe_joints: need 29 finite joint positions, got shape {q.shape}")
        self._robot_joints = q.copy()

    def play(self, name: str, now: float) -> None:
        """Blend into ``name`` now; the queue is cleared and looping turned off."""
        name = self.resolve(name)
        self.clip(name)
        self._advance(now)
        self._queue.clear()
        self.loop = False
        self._start(name, now)

    def loop_clip(self, name: str, now: float) -> None:
        """Like ``play`` but the clip repeats until stopped or looping is turned off."""
        self.play(name, now)
        self.loop = True

    def queue(self, name: str, now: float) -> None:
        """Play ``name`` after what is playing and queued; at once when idle."""
        name = self.resolve(name)
        self.clip(name)
        self._advance(now)
        if self._current.state in (IDLE, BLENDING_OUT) and not self._queue:
            self._start(name, now)
        else:
            self._queue.append(name)

    def play_next(self, now: float) -> str:
        """Blend into the first queued clip now; returns its name. An empty queue is an error."""
        self._advance(now)
        if not self._queue:
            raise ValueError("play_next: the queue is empty")
        name = self._queue.pop(0)
        self._start(name, now)
        return name

    def stop(self, now: float) -> None:
        """Blend out to the standing reference now; clears the queue and looping."""
        self._advance(now)
        self._queue.clear()
        self.loop = False
        if self._current.state in (IDLE, BLENDING_OUT):
            return
        source = self._current.frames(np.array([now]))
        self._current = _Blend(BLENDING_OUT, now, self.blend_out_s, source, self._standing(source))

    def set_loop(self, enabled: bool) -> None:
        """Repeat the current clip when it ends (queued clips wait until looping is off)."""
        self.loop = bool(enabled)

    # ------------------------------------------------------------------ output

    def window(self, now: float, n: int = 100, dt: float = 0.02) -> MotionWindow:
        """Frames at now + i*dt, i < n, of the current plan (advancing the state to ``now``)."""
        if int(n) != n or n < 2:
            raise ValueError(f"window: n must be an integer >= 2, got {n}")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"window: dt must be positive, got {dt}")
        self._advance(now)
        times = now + dt * np.arange(int(n))
        segments = [self._current]
        queue = list(self._queue)
        while segments[-1].end <= times[-1]:
            segments.append(self._successor(segments[-1], queue))
        parts, mask = [], np.ones(g1.NUM_BODY_JOINTS, dtype=bool)
        for seg in segments:
            inside = times[(times >= seg.start) & (times < seg.end)] if seg is not segments[0] else times[times < seg.end]
            if len(inside):
                parts.append(seg.frames(inside))
                mask &= seg.mask
        frames = _concat(parts)
        frames.joint_pos[:, ~mask] = 0.0  # unsupplied joints carry no data (MotionWindow convention)
        frames.joint_vel[:, ~mask] = 0.0
        cur = self._current
        return MotionWindow(start_time=float(now), dt=float(dt), frames=frames, joint_mask=mask,
                            clip_name=cur.name, clip_time=cur.clip_time(now))

    def status(self, now: float) -> dict:
        """state, clip, clip_time, clip_duration, loop, queue (names) at ``now``."""
        self._advance(now)
        cur = self._current
        return {
            "state": cur.state,
            "clip": cur.name,
            "clip_time": round(cur.clip_time(now), 3),
            "clip_duration": round(cur.clip.duration, 3) if cur.clip is not None else 0.0,
            "loop": self.loop,
            "queue": list(self._queue),
        }

    @property
    def state(self) -> str:
        return self._current.state

    # ------------------------------------------------------------------ plan

    def _advance(self, now: float) -> None:
        if not math.isfinite(now):
            raise ValueError(f"time must be finite, got {now}")
        while self._current.end <= now:
            self._current = self._successor(self._current, self._queue)

    def _standing(self, source: MotionFrames) -> MotionFrames:
        return standing_frame(source, self.standing_height, self.default_pose)

    def _blend_in(self, name: str, start: float, source: MotionFrames) -> _Blend:
        clip = self._clips[name]
        first = clip.sample(np.array([0.0]), self.conventions)
        anchor = Anchor.aligning(first, source)
        if not self._may_turn(clip):  # keep the clip's heading; the reference turns to it at once
            anchor = Anchor(0.0, anchor.clip_origin, anchor.world_origin)
            turn = _yaw(first.root_quat[0]) - _yaw(source.root_quat[0])
            q_turn = np.array([math.cos(turn / 2), 0.0, 0.0, math.sin(turn / 2)])
            source = MotionFrames(**{k: np.array(getattr(source, k)) for k in _FRAME_FIELDS})
            source.root_quat = rotations.multiply(q_turn, source.root_quat)
        return _Blend(BLENDING_IN, start, self.blend_in_s, source, anchor.apply(first), clip, anchor, name)

    def _may_turn(self, clip: MotionClip) -> bool:
        """Whether anchoring may rotate the clip about z. Not when the policy reads stored,
        non-unit quaternions: the authors' ``quat_rotate_inverse`` then mixes in the world-frame
        velocity ((|q|^2 - 1) v), so a GMT policy sees the clip in its own heading or not at all as
        GMT showed it. The policies observe no heading, so the reference simply takes the clip's."""
        if self.conventions is None or not self.conventions.as_stored:
            return True
        norms = np.linalg.norm(clip.root_quat_stored, axis=1)
        return bool(np.all(np.abs(norms - 1.0) < 1e-6))

    def _start(self, name: str, now: float) -> None:
        """Blend into clip ``name`` from the reference at ``now``, with the robot's joints if known."""
        source = self._current.frames(np.array([now]))
        if self._robot_joints is not None:
            source.joint_pos[0] = self._robot_joints
        self._current = self._blend_in(name, now, source)

    def _successor(self, seg: _Segment, queue: list[str]) -> _Segment:
        """What follows ``seg`` when it ends; pops ``queue`` when that starts a queued clip."""
        if isinstance(seg, _Blend) and seg.state == BLENDING_IN:
            if seg.clip is None or seg.anchor is None:
                raise AssertionError("a blend-in without the clip it leads into")
            return _Play(seg.end, seg.clip, seg.anchor, seg.name, self.conventions)
        if isinstance(seg, _Blend):
            return _Idle(seg.end, seg.target)
        if isinstance(seg, _Play):
            last = seg.frames(np.array([seg.end]))
            if self.loop:
                return self._blend_in(seg.name, seg.end, last)
            if queue:
                return self._blend_in(queue.pop(0), seg.end, last)
            return _Blend(BLENDING_OUT, seg.end, self.blend_out_s, last, self._standing(last))
        raise AssertionError(f"segment {seg!r} has no successor")  # idle never ends
