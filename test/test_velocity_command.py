"""Velocity commands: refusal of NaN/inf and absurd values, clamping, ramp, timeout, sticks;
the command script; the per-segment achieved-velocity measure."""
import math

import numpy as np
import pytest

from gmt_ros.core import rotations
from gmt_ros.core.velocity_command import BadVelocityCommand, CommandRamp, VelocityLimits, check, ramp, stick_velocity
from gmt_ros.core.velocity_script import load_script, parse_script
from sim2sim import velocity_tracking

LIMITS = VelocityLimits()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_non_finite_commands_are_refused(bad, axis):
    cmd = [0.1, 0.0, 0.0]
    cmd[axis] = bad
    with pytest.raises(BadVelocityCommand) as exc:
        check(*cmd, LIMITS)
    assert exc.value.reason == "not_finite"
    assert ("vx", "vy", "wz")[axis] in str(exc.value)


def test_non_finite_ignored_component_is_refused_too():
    with pytest.raises(BadVelocityCommand, match=r"linear\.z"):
        check(0.1, 0.0, 0.0, LIMITS, {"linear.z": math.nan})


@pytest.mark.parametrize("cmd,name", [((6.0, 0, 0), "vx"), ((0, -5.5, 0), "vy"), ((0, 0, 12.0), "wz"),
                                      ((-100.0, 0, 0), "vx")])
def test_absurd_commands_are_refused_not_clamped(cmd, name):
    with pytest.raises(BadVelocityCommand) as exc:
        check(*cmd, LIMITS)
    assert exc.value.reason == "absurd" and name in str(exc.value) and "refused" in str(exc.value)


def test_commands_beyond_the_limits_are_clamped_with_a_note():
    out = check(2.0, -1.0, 3.0, LIMITS, {"linear.z": 0.5, "angular.x": 0.0})
    np.testing.assert_allclose(out.velocity, [LIMITS.max_vx, -LIMITS.max_vy, LIMITS.max_wz])
    assert "vx 2 clamped to 0.8" in out.note and "linear.z 0.5 ignored" in out.note
    assert "angular.x" not in out.note
    back = check(-1.0, 0.0, -3.0, LIMITS)
    np.testing.assert_allclose(back.velocity, [-LIMITS.max_vx_backward, 0.0, -LIMITS.max_wz])
    inside = check(0.3, 0.1, -0.2, LIMITS)
    np.testing.assert_allclose(inside.velocity, [0.3, 0.1, -0.2])
    assert inside.note == ""


def test_limits_are_validated():
    with pytest.raises(ValueError, match="max_accel_x"):
        VelocityLimits(max_accel_x=0.0)
    with pytest.raises(ValueError, match="absurd_speed"):
        VelocityLimits(max_vx=6.0)
    with pytest.raises(ValueError, match="max_wz"):
        VelocityLimits(max_wz=math.nan)


def test_ramp_moves_within_the_acceleration_limits():
    v = np.zeros(3)
    target = np.array([0.5, -0.2, 1.0])
    steps = []
    for _ in range(50):
        v = ramp(v, target, LIMITS.accel, 0.02)
        steps.append(v)
    steps = np.array(steps)
    assert np.all(np.abs(np.diff(steps, axis=0)) <= LIMITS.accel * 0.02 + 1e-12)
    np.testing.assert_allclose(steps[-1], target)
    np.testing.assert_allclose(steps[0], [0.02, -0.02, 0.04])


def test_command_times_out_to_zero():
    ramp_ = CommandRamp(LIMITS, timeout_s=0.5)
    assert ramp_.timed_out(0.0) and not np.any(ramp_.target_at(0.0))
    ramp_.accept(np.array([0.4, 0.0, 0.1]), now=10.0)
    np.testing.assert_allclose(ramp_.target_at(10.4), [0.4, 0.0, 0.1])
    assert not ramp_.timed_out(10.5)
    assert ramp_.timed_out(10.51) and not np.any(ramp_.target_at(10.51))
    assert ramp_.age(10.51) == pytest.approx(0.51)


def test_sticks():
    assert stick_velocity(0.05, -0.09, 0.0, LIMITS) is None
    assert stick_velocity(math.nan, 0.0, 0.0, LIMITS) is None
    np.testing.assert_allclose(stick_velocity(0.0, 1.0, 0.0, LIMITS), [LIMITS.max_vx, 0.0, 0.0])
    np.testing.assert_allclose(stick_velocity(0.0, -1.0, 0.0, LIMITS), [-LIMITS.max_vx_backward, 0.0, 0.0])
    # left stick right: step right (-y); right stick right: turn clockwise (-wz); deadzone taken out
    np.testing.assert_allclose(stick_velocity(0.55, 0.0, 1.0, LIMITS, deadzone=0.1),
                               [0.0, -0.5 * LIMITS.max_vy, -LIMITS.max_wz])


def test_script_repeats_and_names_its_problems(tmp_path):
    script = parse_script({"duration_s": 50, "segments": [{"name": "a", "duration_s": 6, "vx": 0.5},
                                                          {"name": "b", "duration_s": 4, "wz": 0.6}]})
    assert len(script.segments) == 10 and script.segments[-1].end_s == 50
    np.testing.assert_allclose(script.command_at(7.0), [0, 0, 0.6])
    np.testing.assert_allclose(script.command_at(45.9), [0.5, 0, 0])
    np.testing.assert_allclose(script.command_at(50.0), [0, 0, 0])
    with pytest.raises(ValueError, match="segment 0 has unknown keys"):
        parse_script({"segments": [{"duration_s": 1, "vz": 1}]})
    with pytest.raises(ValueError, match="segment 0 vx must be a finite number"):
        parse_script({"segments": [{"duration_s": 1, "vx": ".nan"}]})
    with pytest.raises(FileNotFoundError, match="velocity script not found"):
        load_script(tmp_path / "missing.yaml")


def test_shipped_script_is_issue_12s_sequence():
    from gmt_ros.core.paths import config_dir

    script = load_script(config_dir() / "cmd_vel_script.yaml")
    assert script.duration_s == 60.0 and len(script.segments) == 12
    first = [(s.name, s.end_s - s.start_s, s.command) for s in script.segments[:4]]
    assert first == [("forward", 6.0, (0.5, 0.0, 0.0)), ("turn", 6.0, (0.0, 0.0, 0.6)),
                     ("sideways", 4.0, (0.0, 0.2, 0.0)), ("stop", 4.0, (0.0, 0.0, 0.0))]


def test_achieved_velocity_of_a_known_path():
    """A pelvis walking a circle (0.5 m/s forward, 0.25 rad/s) with a 0.2 m/s sideways sway at
    1 Hz: the 1 s average removes the sway and gives the body-frame velocity and yaw rate."""
    t = np.arange(0, 10, 0.02)
    yaw = 0.25 * t
    sway = 0.2 / (2 * np.pi) * np.sin(2 * np.pi * t)  # lateral offset whose rate is 0.2 cos(2 pi t)
    radius = 0.5 / 0.25
    x = radius * np.sin(yaw) - sway * np.sin(yaw)
    y = radius * (1 - np.cos(yaw)) + sway * np.cos(yaw)
    pos = np.stack([x, y, np.full_like(t, 0.78)], axis=-1)
    quat = rotations.from_rpy(np.stack([np.zeros_like(t), np.zeros_like(t), yaw], axis=-1))
    centres, v = velocity_tracking.averaged_velocity(t, pos, quat)
    assert centres[0] == pytest.approx(0.5) and centres[-1] == pytest.approx(t[-1] - 0.5)
    np.testing.assert_allclose(v[:, 2], 0.25, atol=1e-9)
    np.testing.assert_allclose(v[:, 0], 0.5, atol=0.01)  # chord of a 0.25 rad arc: 0.3 % short
    np.testing.assert_allclose(v[:, 1], 0.0, atol=0.01)
    script = parse_script({"segments": [{"name": "arc", "duration_s": 10, "vx": 0.5, "wz": 0.25}]})
    row = velocity_tracking.segment_rows(script, t, pos, quat)[0]
    assert row["settled_e_v"] < 0.01 and row["settled_e_wz"] < 1e-6
    # settled: centres from start + 2 s + 0.5 s to the end - 0.5 s
    assert row["settled_windows"] == int(round((10 - 0.02 - 0.5 - 2.5) / 0.02)) + 1
    assert velocity_tracking.summary([row])["within_bounds"]


def test_feedback_closes_the_loop_on_a_slow_walker():
    """A robot that walks 0.7 of what it is asked: the correction converges to command x (1/0.7 - 1)."""
    from gmt_ros.core.velocity_command import VelocityFeedback

    fb = VelocityFeedback(gain=0.5, bound=(0.3, 0.3, 0.4), settle_s=1.0)
    command = np.array([0.5, 0.0, 0.3])
    asked = command
    for k in range(1500):  # 30 s at 50 Hz
        t = 0.02 * k
        measured = 0.7 * asked if k > 10 else None
        asked = fb.target(t, command, measured)
        if t < 1.0:
            np.testing.assert_allclose(asked, command)  # not before the command has settled
    np.testing.assert_allclose(asked, command / 0.7, atol=0.01)
    # a robot that cannot get there: the correction stops at its bound
    for k in range(1500, 3000):
        asked = fb.target(0.02 * k, command, np.zeros(3))
    np.testing.assert_allclose(asked, command + [0.3, 0.0, 0.4])
    # a new command, or zero, starts from no correction
    np.testing.assert_allclose(fb.target(60.0, np.array([0.0, 0.2, 0.0]), np.zeros(3)), [0.0, 0.2, 0.0])
    np.testing.assert_allclose(fb.target(60.02, np.zeros(3), np.ones(3)), np.zeros(3))
    with pytest.raises(ValueError):
        VelocityFeedback(gain=-1.0)


def test_leg_odometry_on_a_clip_with_planted_feet():
    """gmt/walk_stand plants its feet well (median slip 0.06 m/s): leg odometry from its joint
    angles and orientation recovers its root velocity; the yaw rate is the orientation's."""
    import warnings

    from gmt_ros.core.clip_library import load_named_clip
    from gmt_ros.core.leg_odometry import LegOdometry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clip = load_named_clip("gmt/walk_stand")
    t = np.arange(0.0, clip.duration, 0.02)
    f = clip.sample(t)
    odo = LegOdometry(average_s=1.0)
    estimates = []
    for i in range(len(t)):
        odo.update(t[i], f.joint_pos[i], f.root_quat[i])
        estimates.append(odo.velocity())
    assert all(v is None for v in estimates[:45]) and estimates[60] is not None
    centres, truth = velocity_tracking.averaged_velocity(t, f.root_pos, f.root_quat)
    est = np.array([estimates[int(round((c + 0.5) / 0.02))] for c in centres if c + 0.5 <= t[-1]])
    err = np.abs(est - truth[:len(est)]).mean(axis=0)
    assert err[0] < 0.06 and err[1] < 0.03 and err[2] < 0.005, err
    assert truth[:, 0].max() > 0.5  # it did walk
    odo.update(t[-1] + 1.0, f.joint_pos[-1], f.root_quat[-1])  # a gap: the average starts over
    assert odo.velocity() is None
