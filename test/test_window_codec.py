"""Motion-target encoding: MotionWindow <-> JointTrajectory round trips on real shipped clips,
finite-difference velocities and resampling against hand computations, every refusal reason, and
the arrival-time checks of window_check."""
import random
import warnings

import numpy as np
import pytest
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from gmt_ros.core import g1, rotations
from gmt_ros.core.clip_library import resolve_clip
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.motion import load_clip, window_from_clip
from gmt_ros.core.window_check import MotionTargetError, check_window_timing
from gmt_ros.nodes.window_codec import (
    FLOATING_BASE_JOINTS,
    decode_window,
    encode_window,
    seconds_to_time,
    time_to_seconds,
)

STAMP = 1_763_800_000.123456  # a realistic system time: precision matters at this magnitude


def _clip(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip(resolve_clip(name))


def _assert_same_window(a: MotionWindow, b: MotionWindow, vel_atol=1e-9):
    assert abs(a.start_time - b.start_time) < 1e-6
    assert a.dt == pytest.approx(b.dt)
    assert len(a.frames) == len(b.frames)
    np.testing.assert_array_equal(a.joint_mask, b.joint_mask)
    fa, fb = a.frames, b.frames
    np.testing.assert_allclose(fa.root_pos, fb.root_pos, atol=1e-9)
    # q and -q are the same rotation; compare up to sign, frame by frame
    sign = np.sign(np.sum(fa.root_quat * fb.root_quat, axis=1))[:, None]
    np.testing.assert_allclose(fa.root_quat, sign * fb.root_quat, atol=1e-9)
    np.testing.assert_allclose(fa.joint_pos, fb.joint_pos, atol=1e-9)
    np.testing.assert_allclose(fa.root_lin_vel, fb.root_lin_vel, atol=vel_atol)
    np.testing.assert_allclose(fa.root_ang_vel, fb.root_ang_vel, atol=vel_atol)
    np.testing.assert_allclose(fa.joint_vel, fb.joint_vel, atol=vel_atol)


def _constant_rate_window(n=50, dt=0.02, yaw_rate=0.7, start=STAMP) -> MotionWindow:
    """Root moving at constant world velocity and yaw rate, joints at constant speed: finite
    differences are exact for it."""
    t = np.arange(n) * dt
    lin = np.array([0.5, -0.2, 0.05])
    joint_speed = np.linspace(-0.3, 0.3, g1.NUM_BODY_JOINTS)
    frames = MotionFrames(
        root_pos=np.array([0.1, 0.2, 0.75]) + t[:, None] * lin,
        root_quat=rotations.from_rpy(np.stack([np.full(n, 0.05), np.full(n, -0.03), 0.4 + yaw_rate * t], axis=1)),
        root_lin_vel=np.tile(lin, (n, 1)),
        root_ang_vel=np.tile([0.0, 0.0, yaw_rate], (n, 1)),
        joint_pos=g1.DEFAULT_POSE + t[:, None] * joint_speed,
        joint_vel=np.tile(joint_speed, (n, 1)),
    )
    return MotionWindow(start_time=start, dt=dt, frames=frames, joint_mask=np.ones(g1.NUM_BODY_JOINTS, bool))


def _good_message(n=5):
    return encode_window(_constant_rate_window(n=n))


def _scale_quat(point, scale):
    values = list(point.positions)
    values[3:7] = [scale * v for v in values[3:7]]
    point.positions = values


def _reason(msg, **kwargs) -> tuple[str, str]:
    with pytest.raises(MotionTargetError) as info:
        decode_window(msg, **kwargs)
    return info.value.reason, str(info.value)


# ------------------------------------------------------------------ round trips


def test_stamp_conversion_keeps_sub_microsecond_precision():
    stamp = seconds_to_time(STAMP)
    assert stamp.sec == 1_763_800_000 and abs(stamp.nanosec - 123_456_000) <= 1
    assert abs(time_to_seconds(stamp) - STAMP) < 1e-6
    edge = seconds_to_time(41.9999999999)  # rounds up to the next second, not to nanosec 1e9
    assert (edge.sec, edge.nanosec) == (42, 0)


def test_round_trip_29_joints_with_velocities_real_clip():
    clip = _clip("twist2/walk_001")
    window = window_from_clip(clip, clip_time=3.0, start_time=STAMP, n=100, dt=0.02)
    msg = encode_window(window)
    assert msg.header.frame_id == "world"
    assert list(msg.joint_names[:7]) == list(FLOATING_BASE_JOINTS)
    assert list(msg.joint_names[7:]) == list(g1.JOINT_NAMES)
    assert len(msg.points) == 100 and len(msg.points[0].positions) == 36 and len(msg.points[0].velocities) == 36
    assert msg.points[0].velocities[3] == 0.0  # the qw column carries no velocity
    assert time_to_seconds(msg.points[99].time_from_start) == pytest.approx(1.98)
    _assert_same_window(decode_window(msg, dt=0.02), window)


def test_round_trip_23_joints_shuffled_order_real_clip():
    clip = _clip("gmt/walk_stand")
    window = window_from_clip(clip, clip_time=2.0, start_time=STAMP, n=60, dt=0.02)
    names = list(g1.GMT23_NAMES)
    random.Random(4).shuffle(names)
    assert names != list(g1.GMT23_NAMES)
    msg = encode_window(window, joint_names=names)
    assert list(msg.joint_names[7:]) == names
    # the k-th robot column of the message is the clip's joint of that name
    k = 7 + names.index("left_knee_joint")
    assert msg.points[10].positions[k] == pytest.approx(window.frames.joint_pos[10, g1.SLOT_OF["left_knee_joint"]])
    decoded = decode_window(msg, dt=0.02)
    assert decoded.joint_mask.sum() == 23 and not decoded.joint_mask[list(g1.WRIST_SLOTS)].any()
    _assert_same_window(decoded, window)


def test_floating_base_columns_are_found_by_name_in_any_order():
    window = _constant_rate_window(n=10)
    msg = encode_window(window)
    order = list(range(7, 36)) + [3, 0, 6, 1, 4, 2, 5]  # joints first, floating base shuffled after them
    shuffled = JointTrajectory(header=msg.header, joint_names=[msg.joint_names[i] for i in order])
    shuffled.points = [JointTrajectoryPoint(positions=[p.positions[i] for i in order],
                                            velocities=[p.velocities[i] for i in order],
                                            time_from_start=p.time_from_start) for p in msg.points]
    _assert_same_window(decode_window(shuffled), window)


def test_without_velocities_decoder_takes_finite_differences():
    # exact for constant rates: the decoded velocities equal the true ones
    window = _constant_rate_window()
    _assert_same_window(decode_window(encode_window(window, with_velocities=False)), window, vel_atol=1e-9)

    # on a real clip: centred differences of the positions inside, one-sided at the ends
    clip = _clip("twist2/walk_002")
    window = window_from_clip(clip, clip_time=4.0, start_time=STAMP, n=40, dt=0.02)
    decoded = decode_window(encode_window(window, with_velocities=False))
    q = window.frames.joint_pos
    expected = np.empty_like(q)
    expected[1:-1] = (q[2:] - q[:-2]) / 0.04
    expected[0], expected[-1] = (q[1] - q[0]) / 0.02, (q[-1] - q[-2]) / 0.02
    np.testing.assert_allclose(decoded.frames.joint_vel, expected, atol=1e-9)
    p = window.frames.root_pos
    np.testing.assert_allclose(decoded.frames.root_lin_vel[5], (p[6] - p[4]) / 0.04, atol=1e-9)
    # yaw rate from the change of heading over two steps
    yaw = np.unwrap(rotations.to_rpy(window.frames.root_quat)[:, 2])
    assert decoded.frames.root_ang_vel[5, 2] == pytest.approx((yaw[6] - yaw[4]) / 0.04, abs=0.05)
    np.testing.assert_allclose(decoded.frames.root_pos, p, atol=1e-12)


def test_non_uniform_times_are_resampled_on_the_dt_grid():
    # joints move linearly, so every resampled value is known in closed form
    times = np.array([0.0, 0.013, 0.05, 0.051, 0.12, 0.2, 0.31])
    speed = 0.8
    msg = JointTrajectory(joint_names=list(FLOATING_BASE_JOINTS) + ["left_knee_joint", "right_elbow_joint"])
    msg.header.stamp = seconds_to_time(STAMP)
    for t in times:
        msg.points.append(JointTrajectoryPoint(positions=[0.0, 0.0, 0.78, 1.0, 0.0, 0.0, 0.0, 0.3 + speed * t, -0.1 * t],
                                               time_from_start=seconds_to_time(t)))
    window = decode_window(msg, dt=0.02)
    assert len(window.frames) == 16  # 0.00 .. 0.30; 0.31 is past the last grid point
    grid = 0.02 * np.arange(16)
    np.testing.assert_allclose(window.frames.joint_pos[:, g1.SLOT_OF["left_knee_joint"]], 0.3 + speed * grid, atol=1e-12)
    np.testing.assert_allclose(window.frames.joint_vel[:, g1.SLOT_OF["left_knee_joint"]], speed, atol=1e-9)
    np.testing.assert_allclose(window.frames.joint_pos[:, g1.SLOT_OF["right_elbow_joint"]], -0.1 * grid, atol=1e-12)
    assert window.joint_mask.sum() == 2
    assert np.all(window.frames.joint_pos[:, ~window.joint_mask] == 0.0)


def test_first_point_time_offsets_the_window_start():
    msg = _good_message()
    for p in msg.points:
        p.time_from_start = seconds_to_time(time_to_seconds(p.time_from_start) + 0.1)
    assert decode_window(msg).start_time == pytest.approx(STAMP + 0.1, abs=1e-6)


def test_slightly_off_unit_quaternion_is_normalised():
    msg = _good_message()
    for p in msg.points:
        _scale_quat(p, 0.95)
    window = decode_window(msg)
    np.testing.assert_allclose(np.linalg.norm(window.frames.root_quat, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(rotations.to_rpy(window.frames.root_quat)[0], [0.05, -0.03, 0.4], atol=1e-9)


def test_encoder_refuses_joints_the_window_does_not_supply():
    clip = _clip("gmt/squat")
    window = window_from_clip(clip, 0.0, STAMP, n=5)
    with pytest.raises(ValueError, match="left_wrist_roll_joint"):
        encode_window(window, joint_names=["left_knee_joint", "left_wrist_roll_joint"])


# ------------------------------------------------------------------ refusals


def test_refuses_missing_floating_base():
    msg = _good_message()
    msg.joint_names = [n for n in msg.joint_names if n != "floating_base_qz"]
    for p in msg.points:
        p.positions = p.positions[:6] + p.positions[7:]
        p.velocities = p.velocities[:6] + p.velocities[7:]
    reason, text = _reason(msg)
    assert reason == "missing_floating_base" and "floating_base_qz" in text


def test_refuses_unknown_and_duplicate_joint_names():
    msg = _good_message()
    names = list(msg.joint_names)
    names[10] = "left_pinky_joint"
    msg.joint_names = names
    reason, text = _reason(msg)
    assert reason == "unknown_joint" and "left_pinky_joint" in text

    msg = _good_message()
    names = list(msg.joint_names)
    names[10] = names[11]
    msg.joint_names = names
    reason, text = _reason(msg)
    assert reason == "duplicate_joint" and names[11] in text


@pytest.mark.parametrize("case", ["short_positions", "some_velocities", "short_velocities"])
def test_refuses_lengths_that_do_not_match(case):
    msg = _good_message()
    if case == "short_positions":
        msg.points[2].positions = msg.points[2].positions[:-1]
        expected = "point 2 has 35 positions for 36 joint_names"
    elif case == "some_velocities":
        msg.points[3].velocities = []
        expected = "velocities on point 0 but not on point 3"
    else:
        msg.points[1].velocities = msg.points[1].velocities[:30]
        expected = "point 1 has 30 velocities"
    reason, text = _reason(msg)
    assert reason == "length_mismatch" and expected in text


def test_refuses_nan_and_inf():
    msg = _good_message()
    msg.points[2].positions[7 + 3] = float("nan")
    reason, text = _reason(msg)
    assert reason == "not_finite" and "position of left_knee_joint at point 2" in text
    msg = _good_message()
    msg.points[4].velocities[0] = float("inf")
    reason, text = _reason(msg)
    assert reason == "not_finite" and "velocity of floating_base_x at point 4" in text


@pytest.mark.parametrize("scale", [1.25, 0.5, 0.0])
def test_refuses_quaternions_far_from_unit(scale):
    msg = _good_message()
    _scale_quat(msg.points[1], scale)
    reason, text = _reason(msg)
    assert reason == "bad_quaternion" and "point 1" in text and f"{scale:.4f}"[:3] in text


def test_refuses_times_that_do_not_increase():
    msg = _good_message()
    msg.points[3].time_from_start = msg.points[2].time_from_start
    reason, text = _reason(msg)
    assert reason == "times_not_increasing" and "point 3" in text


def test_refuses_fewer_than_two_points():
    msg = _good_message()
    msg.points = msg.points[:1]
    reason, text = _reason(msg)
    assert reason == "too_few_points" and "1 points" in text


def test_refuses_a_horizon_shorter_than_the_policy_reads():
    msg = _good_message(n=50)  # spans 0.98 s
    assert decode_window(msg, min_horizon_s=0.98).end_time == pytest.approx(STAMP + 0.98, abs=1e-6)
    reason, text = _reason(msg, min_horizon_s=1.9)
    assert reason == "too_short" and "spans 0.980 s" in text and "1.900 s ahead" in text
    # two points closer together than one grid step cannot make a window
    msg.points = msg.points[:1] + [JointTrajectoryPoint(positions=msg.points[1].positions,
                                                        velocities=msg.points[1].velocities,
                                                        time_from_start=seconds_to_time(0.01))]
    assert _reason(msg)[0] == "too_short"


def test_refuses_other_frames():
    msg = _good_message()
    msg.header.frame_id = "map"
    reason, text = _reason(msg)
    assert reason == "frame_id" and "'map'" in text


# ------------------------------------------------------------------ arrival checks (window_check)


def test_window_timing_checks():
    window = _constant_rate_window(n=101)  # 2.0 s from STAMP
    check_window_timing(window, now=STAMP + 0.05, max_age_s=0.5, horizon_s=1.9)
    with pytest.raises(MotionTargetError, match=r"0.600 s old") as info:
        check_window_timing(window, now=STAMP + 0.6, max_age_s=0.5, horizon_s=0.02)
    assert info.value.reason == "stale"
    with pytest.raises(MotionTargetError, match="in the future") as info:
        check_window_timing(window, now=STAMP - 0.7, max_age_s=0.5, horizon_s=0.02)
    assert info.value.reason == "future"
    # 0.2 s old: ends 1.8 s from now, GMT reads 1.9 s ahead
    with pytest.raises(MotionTargetError, match=r"ends at \+1.800 s") as info:
        check_window_timing(window, now=STAMP + 0.2, max_age_s=0.5, horizon_s=1.9)
    assert info.value.reason == "too_short"
    with pytest.raises(ValueError, match="max_age_s"):
        check_window_timing(window, now=STAMP, max_age_s=0.0, horizon_s=0.02)
