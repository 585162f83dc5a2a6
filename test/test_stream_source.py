"""The live stream's core: buffer, retiming, window building, producer statistics and the
idle -> blending_in -> streaming -> easing_out -> idle machine, on a synthetic motion whose every
value is known in closed form (joints and root move linearly in time, so interpolation and
prediction are exact) and on a shipped clip sent with jitter, drops and reordering."""
import math

import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.clip_library import load_named_clip
from gmt_ros.core.playback import STANDING_HEIGHT
from gmt_ros.core.stream_buffer import EXTRAPOLATED, HELD, INTERPOLATED, BufferedFrames, StreamStats
from gmt_ros.core.stream_frame import frame_columns, frame_from_named
from gmt_ros.core.stream_source import BLENDING_IN, EASING_OUT, IDLE, STREAMING, StreamConfig, StreamSource

T0 = 5000.0
DT = 0.02
N = 61  # 1.2 s windows
SPEED = np.linspace(-1.0, 1.0, 23)  # rad/s of each GMT23 joint
YAW = 0.5  # the producer's heading; the stream is re-anchored to the standing heading (0)
ORIGIN = np.array([2.0, 1.0])
ROOT_SPEED = 0.3  # m/s along the producer's heading
NAMES = frame_columns(g1.GMT23_NAMES)
SLOTS = list(g1.GMT23_SLOTS)


def pose(t):
    """The producer's pose at producer time t (linear in t)."""
    c = t - T0
    xy = ORIGIN + ROOT_SPEED * c * np.array([math.cos(YAW), math.sin(YAW)])
    quat = [math.cos(YAW / 2), 0.0, 0.0, math.sin(YAW / 2)]
    joints = g1.DEFAULT_POSE[SLOTS] + SPEED * c
    return [xy[0], xy[1], 0.76] + quat + list(joints)


def frame(t, seq=None, names=NAMES, velocities=None):
    return frame_from_named(names, pose(t), velocities, stamp=t, seq=seq)


def expected_joints(t):
    q = g1.DEFAULT_POSE.copy()
    q[SLOTS] += SPEED * (t - T0)
    q[list(g1.WRIST_SLOTS)] = 0.0
    return q


class Clock:
    """Frames at ``rate`` (stamp T0 + k / rate, arriving ``latency`` later) and a window every tick
    of DT; frames that arrived by a tick are added before its window."""

    def __init__(self, source, latency=0.01):
        self.src, self.latency, self.now = source, latency, T0
        self.events = []
        self.next_stamp = T0

    def run(self, until, frames=True, rate=50.0, seq0=0):
        windows = []
        while self.now < until - 1e-9:
            while frames and self.next_stamp + self.latency <= self.now + 1e-9:
                k = round((self.next_stamp - T0) * rate)
                self.src.add_frame(frame(self.next_stamp, seq=seq0 + k), self.next_stamp + self.latency)
                self.next_stamp = T0 + (k + 1) / rate
            if not frames:
                self.next_stamp = self.now + DT
            window, vel = self.src.window(self.now, N, DT)
            windows.append((self.now, window, vel))
            self.events += self.src.take_events()
            self.now = round(self.now + DT, 9)
        return windows

    def codes(self):
        return [e.code for e in self.events]


def test_idle_window_is_the_standing_pose():
    window, vel = StreamSource().window(T0, N, DT)
    f = window.frames
    np.testing.assert_allclose(f.joint_pos, np.tile(g1.DEFAULT_POSE, (N, 1)))
    np.testing.assert_allclose(f.root_pos[:, 2], STANDING_HEIGHT)
    np.testing.assert_allclose(f.root_quat, np.tile([1.0, 0, 0, 0], (N, 1)))
    assert vel and not f.joint_vel.any() and window.joint_mask.all() and window.start_time == T0


def test_stream_is_delayed_anchored_predicted_then_held():
    cfg = StreamConfig(delay_s=0.1, predict_s=0.1, blend_in_s=0.5)
    src = StreamSource(cfg)
    clock = Clock(src)
    windows = clock.run(T0 + 2.0)
    assert clock.codes()[0] == "started" and src.state == STREAMING
    now, window, vel = windows[-1]
    assert not vel  # the producer sent no velocities: publish none, the policy differentiates
    newest = now - DT  # the newest frame that had arrived (50 Hz, 10 ms latency)
    f = window.frames
    for i in range(N):
        t = now - cfg.delay_s + i * DT  # producer time of frame i
        t_used = min(t, newest + cfg.predict_s)  # predicted up to predict_s past the newest, then held
        np.testing.assert_allclose(f.joint_pos[i], expected_joints(t_used), atol=1e-9)
        # anchored: the first frame (stamp T0) at the standing x, y (0, 0) and heading (0)
        start = T0
        np.testing.assert_allclose(f.root_pos[i], [ROOT_SPEED * (t_used - start), 0.0, 0.76], atol=1e-9)
        np.testing.assert_allclose(f.root_quat[i], [1, 0, 0, 0], atol=1e-9)
    assert not window.joint_mask[list(g1.WRIST_SLOTS)].any() and window.joint_mask.sum() == 23


def test_blend_in_is_continuous_from_standing():
    src = StreamSource(StreamConfig(blend_in_s=0.5))
    windows = Clock(src).run(T0 + 1.0)
    q0 = np.array([w.frames.joint_pos[0] for _, w, _ in windows])
    np.testing.assert_allclose(q0[0][SLOTS], g1.DEFAULT_POSE[SLOTS], atol=1e-9)  # starts at standing
    assert np.abs(np.diff(q0, axis=0)).max() < 0.05  # 1 rad/s joints + a 0.5 s blend: no jump
    heights = [w.frames.root_pos[0, 2] for _, w, _ in windows]
    assert heights[0] == pytest.approx(STANDING_HEIGHT) and heights[-1] == pytest.approx(0.76)


def test_reordered_frames_within_the_delay_give_the_same_windows():
    def run(swaps):
        src = StreamSource(StreamConfig(delay_s=0.1, blend_in_s=0.2))
        out, now = [], T0
        stamps = [T0 + k * 0.02 for k in range(40)]
        arrivals = {k: stamps[k] + 0.01 for k in range(40)}
        for a, b in swaps:  # a arrives just after b
            arrivals[a] = arrivals[b] + 0.005
        pending = sorted(range(40), key=lambda k: arrivals[k])
        verdicts = []
        while now < T0 + 0.9:
            while pending and arrivals[pending[0]] <= now:
                k = pending.pop(0)
                verdicts.append(src.add_frame(frame(stamps[k], seq=k), arrivals[k]))
            out.append((src.window(now, N, DT)[0].frames.joint_pos, src.status(now)["buffered"]))
            now += DT
        return out, verdicts, src

    straight, _, _ = run([])
    shuffled, verdicts, src = run([(10, 11), (20, 22), (30, 31)])
    assert set(verdicts) == {"accepted"} and src.stats.counts["reordered"] == 3
    played = int(0.1 / DT) - 1  # frames up to the playback point + delay - a frame period are in both
    for (a, count_a), (b, count_b) in zip(straight, shuffled):
        np.testing.assert_allclose(a[:played], b[:played], atol=1e-12)
        if count_a == count_b:  # every frame sent so far has arrived: the whole window agrees
            np.testing.assert_allclose(a, b, atol=1e-12)
    assert any(e.code == "reordered" and "used in stamp order" in e.text for e in src.take_events())


def test_late_duplicate_stale_future_and_joint_set_refusals():
    src = StreamSource(StreamConfig(delay_s=0.1))
    clock = Clock(src)
    clock.run(T0 + 1.0)
    now = clock.now
    # late: 0.2 s old (behind the 0.1 s playback point) while newer frames are in use
    assert src.add_frame(frame(now - 0.2 + 0.001, seq=900), now) == "late"
    assert src.add_frame(frame(now - 0.04, seq=48), now) == "duplicate"  # seq 48 was sent
    assert src.add_frame(frame(now - 0.6), now) == "stale"  # older than max_latency_s 0.5
    assert src.add_frame(frame(now + 0.7), now) == "future"
    wrong = frame_columns(g1.JOINT_NAMES)  # 29 joints into a 23-joint stream
    assert src.add_frame(frame_from_named(wrong, pose(now)[:7] + [0.0] * 29, stamp=now), now) == "joint_set"
    text = {e.code: e.text for e in src.take_events()}
    assert "late stream frame dropped: seq 900" in text["late"]
    assert "0.600 s old on arrival (max_latency_s 0.5)" in text["stale"]
    assert "in the future" in text["future"]
    assert "added left_wrist_roll_joint" in text["refused:joint_set"]
    counts = src.stats.summary()["counts"]
    assert counts["late"] == counts["duplicate"] == counts["stale"] == counts["future"] == 1
    assert src.stats.refused == {"joint_set": 1}


def test_gap_holds_then_crossfades_back_without_a_jump():
    cfg = StreamConfig(delay_s=0.1, predict_s=0.1, catch_up_s=0.2, blend_in_s=0.3)
    src = StreamSource(cfg)
    clock = Clock(src)
    clock.run(T0 + 1.0)
    held = clock.run(T0 + 1.4, frames=False)  # 0.4 s without frames (< dead_after_s 0.5)
    resumed = clock.run(T0 + 2.0)
    assert src.state == STREAMING
    q = np.array([w.frames.joint_pos[0] for _, w, _ in held + resumed])
    # held: the pose stops at the newest frame + predict_s
    newest = T0 + 1.0 - 2 * DT  # the last frame that arrived by the last tick (10 ms latency)
    np.testing.assert_allclose(held[-1][1].frames.joint_pos[0], expected_joints(newest + cfg.predict_s), atol=1e-9)
    # the stream is 0.4 s further on when it resumes: a 0.4 rad jump for the fastest joint without the crossfade
    assert np.abs(np.diff(q, axis=0)).max() < 0.12
    np.testing.assert_allclose(resumed[-1][1].frames.joint_pos[0], expected_joints(clock.now - DT - cfg.delay_s),
                               atol=1e-9)
    codes = clock.codes()
    assert codes.index("gap") < codes.index("resumed") and "dead" not in codes
    gap = next(e for e in clock.events if e.code == "gap")
    assert "holding the last pose" in gap.text


def test_dead_producer_holds_then_eases_to_standing_and_a_new_stream_blends_in():
    cfg = StreamConfig(dead_after_s=0.5, blend_out_s=0.6, blend_in_s=0.3)
    src = StreamSource(cfg)
    clock = Clock(src)
    clock.run(T0 + 1.5)
    last = clock.run(T0 + 3.0, frames=False)
    codes = clock.codes()
    assert codes[-3:] == ["gap", "dead", "standing"]
    dead = next(e for e in clock.events if e.code == "dead")
    assert dead.time == pytest.approx(T0 + 1.5 - DT + 0.01 + 0.5, abs=DT + 1e-9)
    assert "easing to standing over 0.6 s" in dead.text
    assert src.state == IDLE
    f = last[-1][1].frames
    np.testing.assert_allclose(f.joint_pos[0], g1.DEFAULT_POSE, atol=1e-12)
    assert f.root_pos[0, 2] == pytest.approx(STANDING_HEIGHT)
    # standing below where the stream left the robot (anchored x: it walked on +x), level, heading kept
    at_death = next(w for t, w, _ in last if t >= dead.time - 1e-9).frames
    assert f.root_pos[0, 0] == pytest.approx(at_death.root_pos[0, 0], abs=1e-9) and f.root_pos[0, 0] > 0.3
    np.testing.assert_allclose(f.root_quat[0], [1, 0, 0, 0], atol=1e-9)
    q0 = np.array([w.frames.joint_pos[0] for _, w, _ in last])
    assert np.abs(np.diff(q0, axis=0)).max() < 0.12  # 1.4 rad eased over 0.6 s, not a jump
    states = []
    for _ in range(3):
        clock.run(clock.now + DT, seq0=1000)
        states.append(src.state)
    assert states[-1] == BLENDING_IN and clock.codes()[-1] == "started"


def test_easing_out_is_interrupted_by_a_returning_producer():
    src = StreamSource(StreamConfig(dead_after_s=0.3, blend_out_s=1.0, blend_in_s=0.3))
    clock = Clock(src)
    clock.run(T0 + 1.0)
    clock.run(T0 + 1.5, frames=False)
    assert src.state == EASING_OUT
    windows = clock.run(T0 + 2.5, seq0=5000)
    assert src.state == STREAMING and "back" in next(e.text for e in clock.events if e.code == "started"
                                                      and e.time > T0 + 1.4)
    q0 = np.array([w.frames.joint_pos[0] for _, w, _ in windows])
    assert np.abs(np.diff(q0, axis=0)).max() < 0.2  # the stream is up to 1.5 rad away: blended, no jump


def test_velocities_from_the_producer_are_passed_through():
    src = StreamSource(StreamConfig(delay_s=0.1, blend_in_s=0.2))
    vel = [0.1, 0.2, 0.0, 0.0, 0.0, 0.0, 0.3] + list(SPEED)
    for k in range(60):
        t = T0 + k * DT
        src.add_frame(frame_from_named(NAMES, pose(t), vel, stamp=t, seq=k), t + 0.01)
        window, has_vel = src.window(t + 0.01, N, DT)
    assert has_vel
    f = window.frames
    np.testing.assert_allclose(f.joint_vel[0][SLOTS], SPEED)
    # world velocities turned by the anchor (producer heading 0.5 rad -> 0)
    np.testing.assert_allclose(f.root_lin_vel[0], rotations.rotate(rotations.from_rpy(np.array([0, 0, -YAW])),
                                                                   np.array([0.1, 0.2, 0.0])), atol=1e-9)
    np.testing.assert_allclose(f.root_ang_vel[0], [0, 0, 0.3], atol=1e-9)
    assert not f.joint_vel[-1].any()  # held past the prediction: standing still


def test_clock_estimated_maps_a_producer_clock_that_is_off():
    off = 100.0  # the producer's clock runs 100 s ahead
    shared, estimated = StreamSource(StreamConfig()), StreamSource(StreamConfig(clock="estimated"))
    assert shared.add_frame(frame(T0 + off), T0 + 0.01) == "future"
    rng = np.random.default_rng(1)
    for k in range(50):
        t = T0 + k * DT
        assert estimated.add_frame(frame(t + off, seq=k), t + 0.01 + rng.uniform(0, 0.02)) == "accepted"
        estimated.window(t + 0.02, N, DT)
    summary = estimated.status(T0 + 1.0)
    assert summary["clock_offset_s"] == pytest.approx(-off + 0.01, abs=0.002)
    assert 0 <= summary["latency_ms"]["p50"] <= 20 and summary["latency_ms"]["max"] <= 20.0


def test_buffered_frames_sampling_by_hand():
    frames = [(10.0 + t, frame(T0 + t, seq=k)) for k, t in enumerate([0.0, 0.1, 0.2, 0.8, 0.9])]
    buf = BufferedFrames.of(frames)
    def q(t):
        return expected_joints(T0 + t)[SLOTS]
    s = buf.sample(np.array([9.0, 10.05, 10.2, 10.25, 10.5, 10.85, 11.0, 11.5]), predict_s=0.1, max_gap_s=0.25)
    j = s.joint_pos[:, SLOTS]
    np.testing.assert_allclose(j[0], q(0.0))  # before the first frame: held
    np.testing.assert_allclose(j[1], q(0.05))  # interpolated
    np.testing.assert_allclose(j[2], q(0.2))
    np.testing.assert_allclose(j[3], q(0.25))  # 0.2 -> 0.8 is a gap (0.6 > 0.25): predicted ...
    np.testing.assert_allclose(j[4], q(0.3))  # ... for at most 0.1 s, then held
    np.testing.assert_allclose(j[5], q(0.85))  # the next run
    np.testing.assert_allclose(j[6], q(1.0))
    np.testing.assert_allclose(j[7], q(1.0))
    assert buf.coverage(10.05, 0.1, 0.25) == (INTERPOLATED, 0, 1)
    assert buf.coverage(10.25, 0.1, 0.25) == (EXTRAPOLATED, 1, 2)
    assert buf.coverage(10.5, 0.1, 0.25)[0] == HELD


def test_stats_latency_jitter_missing_and_reordered():
    stats = StreamStats(window_s=100.0)
    latencies = [0.010, 0.020, 0.030, 0.040]
    seqs = [0, 1, 3, 2, 5, 6, 8]  # 4 and 7 never arrive; 2 after 3
    for i, seq in enumerate(seqs):
        stamp = 100.0 + seq * 0.02
        stats.frame(stamp + latencies[i % 4], latencies[i % 4], stamp, seq, "accepted")
    s = stats.summary()
    assert s["counts"]["missing"] == 2 and s["counts"]["reordered"] == 1 and s["counts"]["accepted"] == 7
    lat = np.array([latencies[i % 4] for i in range(7)]) * 1e3
    assert s["latency_ms"]["p50"] == pytest.approx(np.percentile(lat, 50), abs=0.01)
    assert s["jitter_ms"] == pytest.approx(lat.std(), abs=0.01)
    # without seq: gaps in the stamps against the median period
    stats = StreamStats()
    for k in [0, 1, 2, 3, 4, 5, 8, 9, 10]:
        stats.frame(1.0 + k * 0.02, 0.0, 1.0 + k * 0.02, None, "accepted")
    assert stats.summary()["counts"]["missing"] == 2


def test_jittered_clip_with_drops_is_retimed_onto_the_clip():
    clip = load_named_clip("gmt/walk_stand")
    rate, jitter, delay = 30.0, 0.03, 0.15
    rng = np.random.default_rng(7)
    src = StreamSource(StreamConfig(delay_s=delay, blend_in_s=0.5))

    def clip_frame(k):
        f = clip.sample(np.array([k / rate]))
        pos = np.concatenate([f.root_pos[0], f.root_quat[0], f.joint_pos[0][SLOTS]])
        return frame_from_named(NAMES, pos, stamp=T0 + k / rate, seq=k)

    count = int(clip.duration * rate)
    sends = sorted((T0 + k / rate + jitter + rng.uniform(-jitter, jitter), k) for k in range(count)
                   if rng.random() > 0.05)
    now, errors, steps, prev = T0, [], [], None
    while now < T0 + clip.duration:
        while sends and sends[0][0] <= now:
            arrival, k = sends.pop(0)
            src.add_frame(clip_frame(k), arrival)
        q0 = src.window(now, N, DT)[0].frames.joint_pos[0]
        if now - T0 > 1.0 and now - delay - T0 < clip.duration - 0.1:
            ref = clip.sample(np.array([now - delay - T0])).joint_pos[0]
            errors.append(np.abs(q0 - ref)[SLOTS].max())
        if prev is not None:
            steps.append(np.abs(q0 - prev).max())
        prev = q0
        now += DT
    # what is left: linear interpolation between 30 Hz frames, across a lost one at worst
    assert max(errors) < 0.06 and np.mean(errors) < 0.005
    assert max(steps) < 0.1
    counts = src.stats.summary()["counts"]
    assert counts["reordered"] > 0 and counts["missing"] == count - counts["accepted"]
    assert not src.stats.refused and counts.get("late", 0) == 0


def test_config_is_checked():
    with pytest.raises(ValueError, match="delay_s must be >= 0"):
        StreamConfig(delay_s=-1)
    with pytest.raises(ValueError, match="clock must be one of shared, estimated"):
        StreamConfig(clock="gps")
    with pytest.raises(ValueError, match=r"max_latency_s .* must exceed delay_s"):
        StreamConfig(delay_s=0.6)
    with pytest.raises(ValueError, match="unknown G1 joint name 'knee'"):
        StreamConfig(required_joints=("knee",))


def test_a_window_may_start_before_now_for_velocity_context():
    src = StreamSource(StreamConfig(delay_s=0.1, blend_in_s=0.2))
    clock = Clock(src)
    clock.run(T0 + 1.0)
    now = clock.now
    early, _ = src.window(now, N + 5, DT, start=now - 5 * DT)
    late, _ = src.window(now, N, DT)
    assert early.start_time == pytest.approx(now - 0.1) and late.start_time == now
    np.testing.assert_allclose(early.frames.joint_pos[5:], late.frames.joint_pos, atol=1e-12)
    np.testing.assert_allclose(early.frames.joint_pos[0], expected_joints(now - 0.1 - 0.1), atol=1e-9)
