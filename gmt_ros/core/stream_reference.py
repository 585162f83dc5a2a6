"""The output of a live stream (``gmt_ros.core.stream_source``) as a small tree of reference
functions over consumer times: standing, the live stream (``LIVE`` stands for the stream as
currently buffered), a frozen copy binding it to a snapshot (what was shown before a switch), and
crossfades between them (quintic smoothstep, like the player's blends); ``prune`` drops the
crossfades that have ended."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.frames import MotionFrames
from gmt_ros.core.playback import Anchor, ease
from gmt_ros.core.stream_buffer import BufferedFrames
from gmt_ros.core.stream_config import StreamConfig

_FIELDS = ("root_pos", "root_quat", "root_lin_vel", "root_ang_vel", "joint_pos", "joint_vel")


@dataclass(frozen=True)
class LiveReference:
    """The buffered frames, delayed and anchored: consumer time t -> producer pose of t - delay."""

    frames: BufferedFrames
    anchor: Anchor
    config: StreamConfig

    def sample(self, times: np.ndarray) -> MotionFrames:
        c = self.config
        return self.anchor.apply(self.frames.sample(times - c.delay_s, c.predict_s, c.max_gap_s))

    def coverage(self, now: float) -> tuple[str, int, int]:
        c = self.config
        return self.frames.coverage(now - c.delay_s, c.predict_s, c.max_gap_s)

    def until(self, stamp: float) -> LiveReference:
        """The same stream without the frames after local time ``stamp``: what was shown while
        the reference was predicted or held from there."""
        return LiveReference(self.frames.until(stamp), self.anchor, self.config)


class ReferenceFn:
    def frames(self, times: np.ndarray, live: LiveReference | None) -> MotionFrames:
        raise NotImplementedError

    def mask(self, live) -> np.ndarray:
        return np.ones(g1.NUM_BODY_JOINTS, dtype=bool)

    def velocities(self, live) -> bool:
        return True


@dataclass(frozen=True)
class Standing(ReferenceFn):
    frame: MotionFrames  # one frame

    def frames(self, times, live):
        return MotionFrames(**{k: np.repeat(getattr(self.frame, k)[:1], len(times), axis=0) for k in _FIELDS})


class _Live(ReferenceFn):
    def frames(self, times, live):
        if live is None:
            raise RuntimeError("the live stream has no frames")
        return live.sample(times)

    def mask(self, live):
        return live.frames.joint_mask.copy()

    def velocities(self, live):
        return live.frames.has_velocities


LIVE = _Live()


@dataclass(frozen=True)
class Frozen(ReferenceFn):
    inner: ReferenceFn
    live: LiveReference | None

    def frames(self, times, live):
        return self.inner.frames(times, self.live)

    def mask(self, live):
        return self.inner.mask(self.live)

    def velocities(self, live):
        return self.inner.velocities(self.live)


@dataclass(frozen=True)
class Crossfade(ReferenceFn):
    a: ReferenceFn
    b: ReferenceFn
    start: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration

    def frames(self, times, live):
        fb = self.b.frames(times, live)
        fading = times < self.end
        if not np.any(fading):
            return fb
        fa = self.a.frames(times, live)
        s, ds = ease((times - self.start) / self.duration)
        rate = (ds / self.duration)[:, None]
        w = s[:, None]
        out = {}
        for pos, vel in (("root_pos", "root_lin_vel"), ("joint_pos", "joint_vel")):
            pa, pb = getattr(fa, pos), getattr(fb, pos)
            out[pos] = pa + w * (pb - pa)
            out[vel] = getattr(fa, vel) + w * (getattr(fb, vel) - getattr(fa, vel)) + rate * (pb - pa)
        out["root_quat"] = rotations.slerp(fa.root_quat, fb.root_quat, s)
        turn = rotations.angular_velocity(fa.root_quat, fb.root_quat, 1.0)  # world rotation vector a -> b
        out["root_ang_vel"] = fa.root_ang_vel + w * (fb.root_ang_vel - fa.root_ang_vel) + rate * turn
        return MotionFrames(**out)

    def mask(self, live):
        return self.a.mask(live) & self.b.mask(live)

    def velocities(self, live):
        return self.a.velocities(live) and self.b.velocities(live)


def prune(fn: ReferenceFn, now: float) -> ReferenceFn:
    """Drop crossfades that have ended (their target alone remains)."""
    if isinstance(fn, Crossfade):
        if now >= fn.end:
            return prune(fn.b, now)
        return Crossfade(prune(fn.a, now), prune(fn.b, now), fn.start, fn.duration)
    if isinstance(fn, Frozen):
        inner = prune(fn.inner, now)
        return inner if isinstance(inner, Standing) else Frozen(inner, fn.live)
    return fn
