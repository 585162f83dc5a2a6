"""The frames of a live stream on the consumer's time line, and what they say about the producer.

``BufferedFrames`` is an immutable snapshot of the buffered frames (sorted by local time) that
samples the reference at any local time:

    before the first frame      the first frame, held
    between two frames          interpolated (linear; slerp for the orientation) when they are at
                                most ``max_gap_s`` apart (a drop or two)
    past the end of a run       (the newest frame, or the last one before a gap > max_gap_s)
                                extrapolated at the last two frames' constant rate for at most
                                ``predict_s``, then held with zero velocity

``StreamStats`` measures the producer: latency (arrival - stamp, after the clock map), jitter,
inter-arrival period, and counts of frames received, accepted, late, duplicated, reordered,
missing (from ``seq`` when the producer sends it, else from gaps in the stamps) and refused by
reason. No ROS import here.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.frames import MotionFrames
from gmt_ros.core.stream_frame import StreamFrame

INTERPOLATED, EXTRAPOLATED, HELD, BEFORE = "interpolated", "extrapolated", "held", "before"


@dataclass(frozen=True)
class BufferedFrames:
    """Frames at local times ``stamps`` (strictly increasing); velocities None when the producer
    sent none (then the sampled velocities are zero and must not be published)."""

    stamps: np.ndarray
    root_pos: np.ndarray
    root_quat: np.ndarray
    joint_pos: np.ndarray
    joint_mask: np.ndarray
    seqs: np.ndarray  # the producer's seq of each frame, -1 where it sent none
    root_lin_vel: np.ndarray | None = None
    root_ang_vel: np.ndarray | None = None
    joint_vel: np.ndarray | None = None

    @classmethod
    def of(cls, frames: list[tuple[float, StreamFrame]]) -> BufferedFrames:
        """From (local time, frame) pairs sorted by local time, all with one joint mask."""
        vel = all(f.has_velocities for _, f in frames)
        return cls(
            stamps=np.array([t for t, _ in frames]),
            root_pos=np.array([f.root_pos for _, f in frames]), root_quat=np.array([f.root_quat for _, f in frames]),
            joint_pos=np.array([f.joint_pos for _, f in frames]), joint_mask=frames[0][1].joint_mask.copy(),
            seqs=np.array([-1 if f.seq is None else f.seq for _, f in frames], dtype=np.int64),
            root_lin_vel=np.array([f.root_lin_vel for _, f in frames]) if vel else None,
            root_ang_vel=np.array([f.root_ang_vel for _, f in frames]) if vel else None,
            joint_vel=np.array([f.joint_vel for _, f in frames]) if vel else None,
        )

    def __len__(self) -> int:
        return int(self.stamps.shape[0])

    def __post_init__(self) -> None:
        given = [v is not None for v in (self.root_lin_vel, self.root_ang_vel, self.joint_vel)]
        if any(given) and not all(given):
            raise ValueError("buffered frames: root_lin_vel, root_ang_vel and joint_vel are given together or not at all")

    def until(self, stamp: float) -> BufferedFrames:
        """The frames at or before local time ``stamp`` (at least the first)."""
        k = max(1, int(np.searchsorted(self.stamps, stamp + 1e-9, side="right")))

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[:k]

        return BufferedFrames(stamps=self.stamps[:k], root_pos=self.root_pos[:k], root_quat=self.root_quat[:k],
                              joint_pos=self.joint_pos[:k], joint_mask=self.joint_mask, seqs=self.seqs[:k],
                              root_lin_vel=cut(self.root_lin_vel), root_ang_vel=cut(self.root_ang_vel),
                              joint_vel=cut(self.joint_vel))

    @property
    def has_velocities(self) -> bool:
        return self.joint_vel is not None

    @property
    def velocities(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(root linear, root angular, joint) velocity of every frame; None when the producer sent none."""
        if self.root_lin_vel is None or self.root_ang_vel is None or self.joint_vel is None:
            return None
        return self.root_lin_vel, self.root_ang_vel, self.joint_vel

    @property
    def newest(self) -> float:
        return float(self.stamps[-1])

    def _brackets(self, taus: np.ndarray, predict_s: float, max_gap_s: float):
        """Per local time: (a, b, u, kind code) with the pose = lerp/slerp(frame a, frame b, u);
        kind 0 before, 1 interpolated, 2 extrapolated, 3 held."""
        s, n = self.stamps, len(self)
        i = np.searchsorted(s, taus, side="right") - 1
        ic = np.clip(i, 0, n - 1)
        nxt = np.minimum(ic + 1, n - 1)
        prv = np.maximum(ic - 1, 0)
        inside = (i >= 0) & (i < n - 1) & (s[nxt] - s[ic] <= max_gap_s)
        extend = (i >= 0) & ~inside & (i >= 1) & (s[ic] - s[prv] <= max_gap_s)
        past = np.clip(taus - s[ic], 0.0, predict_s)
        a, b = ic.copy(), ic.copy()
        u = np.zeros_like(taus)
        a[inside], b[inside] = ic[inside], nxt[inside]
        u[inside] = (taus[inside] - s[ic[inside]]) / (s[nxt[inside]] - s[ic[inside]])
        a[extend] = prv[extend]
        u[extend] = 1.0 + past[extend] / (s[ic[extend]] - s[prv[extend]])
        kind = np.where(i < 0, 0, np.where(inside, 1, np.where(taus - s[ic] <= 1e-9, 1,
                                                                np.where(extend & (taus - s[ic] < predict_s), 2, 3))))
        return a, b, u, kind

    def coverage(self, tau: float, predict_s: float, max_gap_s: float) -> tuple[str, int, int]:
        """(BEFORE | INTERPOLATED | EXTRAPOLATED | HELD, index of the earlier and the later frame the
        sample rests on: the brackets, or the two frames a prediction extends)."""
        a, b, _, kind = self._brackets(np.array([float(tau)]), predict_s, max_gap_s)
        return (BEFORE, INTERPOLATED, EXTRAPOLATED, HELD)[int(kind[0])], int(a[0]), int(b[0])

    def sample(self, taus, predict_s: float, max_gap_s: float) -> MotionFrames:
        """The reference at local times ``taus`` (see the module docstring)."""
        taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
        a, b, u, kind = self._brackets(taus, predict_s, max_gap_s)
        w = u[:, None]

        def lerp(x):
            return x[a] + w * (x[b] - x[a])

        if len(self) > 1:
            quat = rotations.slerp(self.root_quat[a], self.root_quat[b], u)
        else:
            quat = self.root_quat[a].copy()
        n = len(taus)
        moving = (kind == 1) | (kind == 2)
        velocities = self.velocities
        if velocities is not None:
            wv = np.clip(u, 0.0, 1.0)[:, None]
            lin, ang, jv = (v[a] + wv * (v[b] - v[a]) for v in velocities)
            for v in (lin, ang, jv):
                v[~moving] = 0.0
        else:
            lin, ang, jv = np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, g1.NUM_BODY_JOINTS))
        return MotionFrames(root_pos=lerp(self.root_pos), root_quat=quat, root_lin_vel=lin, root_ang_vel=ang,
                            joint_pos=lerp(self.joint_pos), joint_vel=jv)


def _percentiles(values, qs=(50, 90, 95, 99)) -> dict:
    a = np.asarray(values, dtype=np.float64)
    if not a.size:
        return {}
    out = {f"p{q}": round(float(np.percentile(a, q)), 2) for q in qs}
    out.update(mean=round(float(a.mean()), 2), max=round(float(a.max()), 2), std=round(float(a.std()), 2), n=int(a.size))
    return out


class StreamStats:
    """Counts since start, and latency / period statistics over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 60.0):
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"stats window must be positive, got {window_s}")
        self.window_s = float(window_s)
        self.counts: Counter = Counter()  # received, accepted, late, duplicate, reordered, missing
        self.refused: Counter = Counter()  # by reason
        self._samples: deque[tuple[float, float]] = deque()  # (arrival, latency s)
        self._periods: deque[tuple[float, float]] = deque()  # (arrival, inter-arrival s)
        self._last_arrival: float | None = None
        self._seqs: set[int] = set()
        self._seq_range: tuple[int, int] | None = None
        self._missing_before = 0  # missing frames of earlier sessions (seq counters restart)
        self._stamp_steps: deque[float] = deque(maxlen=21)
        self._newest_stamp: float | None = None

    def new_session(self) -> None:
        """The producer started over (after a dead spell): seq may restart."""
        self._missing_before = self.counts["missing"]
        self._seqs.clear()
        self._seq_range = None
        self._newest_stamp = None
        self._last_arrival = None

    def refuse(self, reason: str) -> None:
        self.counts["received"] += 1
        self.refused[reason] += 1

    def frame(self, arrival: float, latency: float, stamp: float, seq: int | None, verdict: str) -> None:
        """A well-formed frame that arrived; ``verdict``: accepted, late, duplicate or stale/future."""
        self.counts["received"] += 1
        self.counts[verdict] += 1
        if self._last_arrival is not None:
            self._periods.append((arrival, arrival - self._last_arrival))
        self._last_arrival = arrival
        if math.isfinite(latency):
            self._samples.append((arrival, latency))
        for q in (self._samples, self._periods):
            while q and q[0][0] < arrival - self.window_s:
                q.popleft()
        if verdict == "duplicate":
            return
        if self._newest_stamp is not None and stamp < self._newest_stamp:
            self.counts["reordered"] += 1
        self._count_missing(stamp, seq)

    def _count_missing(self, stamp: float, seq: int | None) -> None:
        if seq is not None:
            self._seqs.add(seq)
            lo, hi = self._seq_range or (seq, seq)
            self._seq_range = (min(lo, seq), max(hi, seq))
            lo, hi = self._seq_range
            self.counts["missing"] = self._missing_before + (hi - lo + 1) - len(self._seqs)
        elif self._newest_stamp is not None and stamp > self._newest_stamp:
            step = stamp - self._newest_stamp
            if len(self._stamp_steps) >= 5:
                period = float(np.median(self._stamp_steps))
                self.counts["missing"] += max(0, round(step / period) - 1)
            self._stamp_steps.append(step)
        elif self._newest_stamp is not None and self.counts["missing"] > self._missing_before:
            self.counts["missing"] -= 1  # a reordered frame fills a gap counted as missing
        if self._newest_stamp is None or stamp > self._newest_stamp:
            self._newest_stamp = stamp

    def summary(self) -> dict:
        lat = [x * 1e3 for _, x in self._samples]
        per = [x * 1e3 for _, x in self._periods]
        span = (self._samples[-1][0] - self._samples[0][0]) if len(self._samples) > 1 else 0.0
        return {
            "counts": dict(self.counts), "refused": dict(self.refused),
            "latency_ms": _percentiles(lat), "period_ms": _percentiles(per),
            # jitter: spread of the latency (std), as a producer's clock-to-arrival variation
            "jitter_ms": round(float(np.std(lat)), 2) if lat else None,
            "rate_hz": round((len(self._samples) - 1) / span, 2) if span > 0 else None,
            "window_s": self.window_s,
        }
