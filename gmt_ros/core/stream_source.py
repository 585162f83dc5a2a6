"""A live reference stream as motion windows: what ``gmt_stream`` publishes (no ROS here).

A live stream has no future. The trade-off is two settings:

- ``delay_s`` (the fixed delay buffer): the reference the robot follows at time t is the
  producer's pose of time t - delay_s. Frames that arrive within delay_s of their stamp are
  played between real frames, in stamp order, whatever their jitter or order of arrival.
- ``predict_s`` (prediction): when the playback point passes the newest frame (a late or lost
  frame, or delay_s 0), the reference is extrapolated at the last two frames' rate for at most
  predict_s, then held.

Each window starts at ``now`` and runs ``n`` frames of ``dt``: frame i is the producer's pose of
time now - delay_s + i dt where frames exist, predicted and then held beyond the newest one. A
GMT-style policy reading 1.9 s ahead therefore sees a future that stops (held) at most
predict_s after the newest frame; TWIST2 reads one step ahead and is served by the delay alone.

The reference is continuous (no pop) by construction; every switch is a crossfade (quintic
smoothstep, like the player's blends):

    state        output                                            leaves when
    idle         standing (``g1.DEFAULT_POSE``, pelvis at          a frame is accepted
                 standing_height, last x, y and heading)
    blending_in  idle -> the stream over blend_in_s; the stream     the blend ends
                 is anchored (turned about z and shifted) so its
                 first frame has the standing x, y and heading:
                 the policies see neither, and no jump appears
    streaming    the stream, delayed; after a hold or a            no frame arrived for dead_after_s
                 prediction, the newly arrived frames are
                 crossfaded in over catch_up_s
    easing_out   the last output -> standing over blend_out_s      the blend ends (idle), or frames
                 (as the policy does for a stale window)           arrive again (blending_in)

Frames are refused (counted by reason, an event naming it) when malformed (``stream_frame``), when
their joint set differs from the one the stream started with, when older on arrival than
max_latency_s or further in the future than max_future_s (clocks out of step), as duplicates, or
as late: behind the playback point and older than the newest frame (they cannot be used without
changing the past). Drops, reordering, gaps and a dead producer each produce an event.

Clocks: ``shared`` (default) takes stamps as times on the consumer's clock (same host, or NTP/PTP
synchronised); latency is then arrival - stamp. ``estimated`` maps the producer's clock by the
smallest arrival - stamp seen over the stats window (the fastest frame defines zero latency);
latency is then relative to that frame.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.playback import Anchor, standing_frame
from gmt_ros.core.stream_buffer import EXTRAPOLATED, HELD, INTERPOLATED, BufferedFrames, StreamStats
from gmt_ros.core.stream_config import StreamConfig, StreamEvent
from gmt_ros.core.stream_frame import StreamFrame
from gmt_ros.core.stream_reference import LIVE, Crossfade, Frozen, LiveReference, ReferenceFn, Standing, prune

IDLE, BLENDING_IN, STREAMING, EASING_OUT = "idle", "blending_in", "streaming", "easing_out"
MAX_BUFFERED_FRAMES = 4000  # 1 kHz producer with a generous delay; beyond, the oldest go first


@dataclass
class _Session:
    """One continuous stream from a producer (until it goes silent for dead_after_s)."""

    mask: np.ndarray
    frames: list[tuple[float, StreamFrame]] = field(default_factory=list)  # (producer stamp, frame), sorted
    seqs: deque = field(default_factory=lambda: deque(maxlen=256))
    first_arrival: float = 0.0


class StreamSource:
    """Frames in (``add_frame``), windows out (``window``); see the module docstring.
    Times are seconds on the consumer's clock (system time: what ROS stamps with)."""

    def __init__(self, config: StreamConfig | None = None, default_pose: np.ndarray | None = None):
        self.config = config or StreamConfig()
        self.default_pose = g1.DEFAULT_POSE.copy() if default_pose is None else np.asarray(default_pose, dtype=np.float64)
        origin = MotionFrames(root_pos=np.zeros((1, 3)), root_quat=np.array([[1.0, 0.0, 0.0, 0.0]]),
                              root_lin_vel=np.zeros((1, 3)), root_ang_vel=np.zeros((1, 3)),
                              joint_pos=self.default_pose[None].copy(), joint_vel=np.zeros((1, g1.NUM_BODY_JOINTS)))
        self.stats = StreamStats(self.config.stats_window_s)
        self.state = IDLE
        self._out: ReferenceFn = Standing(standing_frame(origin, self.config.standing_height, self.default_pose))
        self._session: _Session | None = None
        self._anchor: Anchor | None = None
        self._live: LiveReference | None = None  # built lazily from the session's frames
        self._shown_live: LiveReference | None = None  # the one the last window was built from
        self._coverage: str | None = None
        self._gap_noted = math.nan
        self._run_end = math.nan  # local time of the frame the last window's prediction / hold started from
        self._state_since = -math.inf
        self._last_tp = -math.inf
        self._last_arrival: float | None = None
        self._offsets: deque[tuple[float, float]] = deque()  # (arrival, arrival - stamp), clock "estimated"
        self._offset = 0.0
        self._events: list[StreamEvent] = []
        self._arrivals: list[float] = []  # arrival times of frames accepted since the last window

    # ------------------------------------------------------------------ frames in

    def refuse(self, reason: str, text: str, arrival: float) -> None:
        """A frame that could not even be read (``stream_frame`` raised): counted, an event."""
        self.stats.refuse(reason)
        self._event(arrival, "warning", f"refused:{reason}", f"refused stream frame ({reason}): {text}")

    def add_frame(self, frame: StreamFrame, arrival: float) -> str:
        """Take a checked frame that arrived at ``arrival``; returns the verdict: accepted,
        joint_set, stale, future, duplicate or late (the reason it was not used)."""
        c = self.config
        if self._session is not None and not np.array_equal(frame.joint_mask, self._session.mask):
            added = [g1.JOINT_NAMES[s] for s in np.flatnonzero(frame.joint_mask & ~self._session.mask)]
            gone = [g1.JOINT_NAMES[s] for s in np.flatnonzero(~frame.joint_mask & self._session.mask)]
            self.refuse("joint_set", f"its joints differ from the stream's ({int(self._session.mask.sum())} joints): "
                                     f"added {', '.join(added) or 'none'}; missing {', '.join(gone) or 'none'} "
                                     f"(a new joint set is taken after dead_after_s {c.dead_after_s:g} s of silence)",
                        arrival)
            return "joint_set"
        latency = self._latency(frame.stamp, arrival)
        stamp = frame.stamp
        if latency > c.max_latency_s or latency < -c.max_future_s:
            verdict = "stale" if latency > 0 else "future"
            self.stats.frame(arrival, latency, stamp, frame.seq, verdict)
            what = (f"{latency:.3f} s old on arrival (max_latency_s {c.max_latency_s:g})" if verdict == "stale" else
                    f"{-latency:.3f} s in the future on arrival (max_future_s {c.max_future_s:g})")
            self._event(arrival, "warning", verdict, f"refused stream frame ({verdict}): stamp {stamp:.3f} is {what}; "
                                                     f"clocks out of step? (clock: {c.clock})")
            return verdict
        session = self._session or _Session(mask=frame.joint_mask.copy(), first_arrival=arrival)
        stamps = [s for s, _ in session.frames]
        newest = stamps[-1] if stamps else -math.inf
        j = bisect.bisect_left(stamps, stamp)
        if (j < len(stamps) and abs(stamps[j] - stamp) < 1e-6) or (j > 0 and abs(stamps[j - 1] - stamp) < 1e-6) \
                or (frame.seq is not None and frame.seq in session.seqs):
            self.stats.frame(arrival, latency, stamp, frame.seq, "duplicate")
            self._event(arrival, "info", "duplicate", f"dropped a duplicate stream frame (seq {frame.seq}, "
                                                      f"stamp {stamp:.3f})")
            return "duplicate"
        local = stamp + self._offset
        if local < newest + self._offset and local < self._last_tp:
            self.stats.frame(arrival, latency, stamp, frame.seq, "late")
            self._event(arrival, "warning", "late", f"late stream frame dropped: seq {frame.seq}, its time is "
                                                    f"{self._last_tp - local:.3f} s behind the playback point "
                                                    f"and a newer frame is in use (delay_s {c.delay_s:g}; latency "
                                                    f"{latency * 1e3:.0f} ms)")
            return "late"
        self.stats.frame(arrival, latency, stamp, frame.seq, "accepted")
        if self._session is None:
            self._session = session
        session.frames.insert(j, (stamp, frame))
        if frame.seq is not None:
            session.seqs.append(frame.seq)
        if len(session.frames) > MAX_BUFFERED_FRAMES:
            del session.frames[0]
        self._live = None
        self._last_arrival = arrival
        self._arrivals.append(arrival)
        if stamp < newest:
            self._event(arrival, "info", "reordered", f"stream frame seq {frame.seq} (stamp {stamp:.3f}) arrived after "
                                                      f"a newer one ({newest - stamp:.3f} s newer): used in stamp order")
        return "accepted"

    def _latency(self, stamp: float, arrival: float) -> float:
        """arrival - stamp on the consumer's clock (clock "estimated": updates the mapping)."""
        if self.config.clock == "shared":
            return arrival - stamp
        self._offsets.append((arrival, arrival - stamp))
        while self._offsets[0][0] < arrival - self.config.stats_window_s:
            self._offsets.popleft()
        self._offset = min(x for _, x in self._offsets)
        return arrival - stamp - self._offset

    # ------------------------------------------------------------------ windows out

    def window(self, now: float, n: int, dt: float, start: float | None = None) -> tuple[MotionWindow, bool]:
        """(the window of ``n`` frames of ``dt`` from ``start`` (default ``now``; earlier gives a
        consumer's velocity rule context before now), whether its velocities are real: False when
        the producer sends none; publish it without velocities then)."""
        if int(n) != n or n < 2:
            raise ValueError(f"window: n must be an integer >= 2, got {n}")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"window: dt must be positive, got {dt}")
        self._advance(now)
        live = self._live_reference()
        start = now if start is None else float(start)
        times = start + dt * np.arange(int(n))
        frames = self._out.frames(times, live)
        mask = self._out.mask(live)
        frames.joint_pos[:, ~mask] = 0.0  # unsupplied joints carry no data (MotionWindow convention)
        frames.joint_vel[:, ~mask] = 0.0
        self._shown_live = live
        return MotionWindow(start_time=start, dt=float(dt), frames=frames, joint_mask=mask), self._out.velocities(live)

    def take_events(self) -> list[StreamEvent]:
        events, self._events = self._events, []
        return events

    def take_arrivals(self) -> list[float]:
        """Arrival times of the frames accepted since the last call (for frame-in latency)."""
        arrivals, self._arrivals = self._arrivals, []
        return arrivals

    def _event(self, t: float, level: str, code: str, text: str) -> None:
        self._events.append(StreamEvent(t, level, code, text))

    def _live_reference(self) -> LiveReference | None:
        """The buffered frames as a reference; None before the stream's first blend-in anchored it."""
        if self._session is None or not self._session.frames or self._anchor is None:
            return None
        if self._live is None:
            frames = [(s + self._offset, f) for s, f in self._session.frames]
            self._live = LiveReference(BufferedFrames.of(frames), self._anchor, self.config)
        return self._live

    def _set_state(self, state: str, now: float) -> None:
        self.state, self._state_since = state, now

    def _advance(self, now: float) -> None:
        if not math.isfinite(now):
            raise ValueError(f"time must be finite, got {now}")
        c = self.config
        tp = now - c.delay_s
        self._last_tp = max(self._last_tp, tp)
        self._forget_played(tp)
        if self.state in (IDLE, EASING_OUT) and self._session is not None:
            self._blend_in(now, self._session)
        elif self.state in (BLENDING_IN, STREAMING):
            live, last_arrival = self._live_reference(), self._last_arrival
            if live is None or last_arrival is None:  # a blend-in (anchor, frames) precedes these states
                raise RuntimeError(f"stream source in state {self.state} without a live stream")
            silent = now - last_arrival
            if silent > c.dead_after_s:
                self._ease_out(now, silent, live)
            else:
                self._follow(now, live, last_arrival)
        elif self.state == EASING_OUT and now >= self._state_since + c.blend_out_s:
            self._set_state(IDLE, now)
            self._event(now, "info", "standing", "standing; waiting for a producer")
        self._out = prune(self._out, now)

    def _forget_played(self, tp: float) -> None:
        """Frames more than keep_s behind the playback point go (two always stay)."""
        if self._session is None:
            return
        frames, horizon = self._session.frames, tp - self.config.keep_s - self._offset
        k = 0
        while k < len(frames) - 2 and frames[k + 1][0] < horizon:
            k += 1
        if k:
            del frames[:k]
            self._live = None

    def _blend_in(self, now: float, session: _Session) -> None:
        c = self.config
        raw = BufferedFrames.of([(s + self._offset, f) for s, f in session.frames]).sample(
            np.array([now - c.delay_s]), c.predict_s, c.max_gap_s)
        current = self._out.frames(np.array([now]), self._shown_live)
        self._anchor = Anchor.aligning(raw, current)
        self._live = None
        self._out = Crossfade(Frozen(self._out, self._shown_live), LIVE, now, c.blend_in_s)
        self._coverage = None
        came_back = self.state == EASING_OUT
        self._set_state(BLENDING_IN, now)
        joints = int(session.mask.sum())
        self._event(now, "info", "started", f"stream {'back' if came_back else 'started'}: first frame "
                    f"{now - session.first_arrival:.3f} s ago ({joints} joints, "
                    f"{'with' if session.frames[0][1].has_velocities else 'without'} velocities); blending in over "
                    f"{c.blend_in_s:g} s, delay {c.delay_s:g} s, prediction up to {c.predict_s:g} s")

    def _follow(self, now: float, live: LiveReference, last_arrival: float) -> None:
        c = self.config
        coverage, a, b = live.coverage(now)
        previous = self._coverage
        streaming = self.state == STREAMING  # a stream's first frames are sparse: no gap events yet
        if previous in (EXTRAPOLATED, HELD) and coverage == INTERPOLATED:
            # continues the prediction / hold shown so far (by the last window, built from a live stream)
            shown = (self._shown_live if self._shown_live is not None else live).until(self._run_end)
            self._out = Crossfade(Frozen(self._out, shown), LIVE, now, c.catch_up_s)
            if previous == HELD and streaming:
                self._event(now, "info", "resumed", f"stream resumed: frames cover the playback point again; "
                                                    f"crossfading to them over {c.catch_up_s:g} s")
        elif coverage == HELD and previous != HELD and streaming:
            behind = now - c.delay_s - float(live.frames.stamps[b])
            self._event(now, "warning", "gap", f"stream gap: no frame for {now - last_arrival:.3f} s; the newest "
                                               f"is {behind:.3f} s behind the playback point (delay_s {c.delay_s:g}, "
                                               f"predict_s {c.predict_s:g}): holding the last pose")
        if coverage == INTERPOLATED and b > a:
            self._note_interpolated_gap(now, live.frames, a, b)
        self._coverage = coverage
        self._run_end = float(live.frames.stamps[b])
        if self.state == BLENDING_IN and now >= self._state_since + c.blend_in_s:
            self._set_state(STREAMING, now)

    def _note_interpolated_gap(self, now: float, frames: BufferedFrames, a: int, b: int) -> None:
        """An event when the playback point crosses frames that never arrived (seq, or a stamp
        step over 1.5 producer periods), once per gap."""
        key = float(frames.stamps[a])
        if key == self._gap_noted:
            return
        seq_a, seq_b = int(frames.seqs[a]), int(frames.seqs[b])
        step = float(frames.stamps[b] - frames.stamps[a])
        steps = np.diff(frames.stamps)
        period = float(np.median(steps)) if steps.size >= 3 else math.inf
        if seq_a >= 0 and seq_b >= 0:
            lost = seq_b - seq_a - 1
        else:
            lost = max(0, round(step / period) - 1) if step > 1.5 * period else 0
        if lost > 0:
            self._gap_noted = key
            which = f"seq {seq_a + 1}..{seq_b - 1}" if seq_a >= 0 else f"after stamp {key - self._offset:.3f}"
            self._event(now, "warning", "dropped", f"{lost} stream frame(s) never arrived ({which}): interpolated "
                                                   f"across {step:.3f} s")

    def _ease_out(self, now: float, silent: float, live: LiveReference) -> None:
        c = self.config
        current = self._out.frames(np.array([now]), live)
        self._out = Crossfade(Frozen(self._out, live), Standing(standing_frame(current, c.standing_height,
                                                                                  self.default_pose)),
                               now, c.blend_out_s)
        self._session = None
        self._live = None
        self._coverage = None
        self.stats.new_session()
        self._set_state(EASING_OUT, now)
        self._event(now, "warning", "dead", f"producer dead: no stream frame for {silent:.3f} s (dead_after_s "
                                            f"{c.dead_after_s:g}): easing to standing over {c.blend_out_s:g} s")

    # ------------------------------------------------------------------ status

    def status(self, now: float) -> dict:
        c = self.config
        session = self._session
        out = {
            "state": self.state, "coverage": self._coverage,
            "buffered": len(session.frames) if session else 0,
            "joints": int(session.mask.sum()) if session else None,
            "velocities": bool(session.frames[0][1].has_velocities) if session and session.frames else None,
            "last_frame_age_s": None if self._last_arrival is None else round(now - self._last_arrival, 3),
            "delay_s": c.delay_s, "predict_s": c.predict_s, "clock": c.clock,
            "clock_offset_s": round(self._offset, 4),
        }
        return out | self.stats.summary()
