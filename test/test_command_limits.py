"""Output safety clamps, against hand-computed values."""
import numpy as np
import pytest

from gmt_ros.core import g1
from gmt_ros.core.command import JointCommand
from gmt_ros.core.command_limits import CommandFault, CommandLimits
from gmt_ros.core.state import RobotState

N = g1.NUM_BODY_JOINTS


def state(q=None, dq=None):
    return RobotState(stamp=0.0, joint_pos=g1.DEFAULT_POSE.copy() if q is None else q,
                      joint_vel=np.zeros(N) if dq is None else dq,
                      imu_quat=np.array([1.0, 0, 0, 0]), imu_gyro=np.zeros(3))


def command(q=None, kp=40.0, kd=2.0):
    return JointCommand(q=g1.DEFAULT_POSE.copy() if q is None else q, dq=np.zeros(N), kp=np.full(N, kp),
                        kd=np.full(N, kd), tau=np.zeros(N), enabled=np.ones(N, bool))


def test_in_limit_command_passes_unchanged():
    out, report = CommandLimits().apply(command(), state(), None, 0.0)
    np.testing.assert_array_equal(out.q, g1.DEFAULT_POSE)
    assert not report.any


@pytest.mark.parametrize("field", ["q", "dq", "kp", "kd", "tau"])
def test_non_finite_anywhere_is_a_fault_naming_field_and_joint(field):
    cmd = command()
    getattr(cmd, field)[7] = np.nan
    with pytest.raises(CommandFault, match=rf"{field} is not finite at right_hip_roll_joint"):
        CommandLimits().apply(cmd, state(), None, 0.0)


def test_gain_bounds():
    cmd = command(kp=40.0)
    cmd.kp[3] = 900.0
    with pytest.raises(CommandFault, match=r"kp 900.0 above its bound 500.0 at left_knee_joint"):
        CommandLimits().check(cmd)
    cmd = command()
    cmd.kd[0] = -1.0
    with pytest.raises(CommandFault, match="kd is negative at left_hip_pitch_joint"):
        CommandLimits().check(cmd)


def test_gross_joint_limit_excursion_is_a_fault_small_one_is_clipped():
    margin = CommandLimits().gross_margin_rad
    q = g1.DEFAULT_POSE.copy()
    q[3] = g1.Q_MAX[3] + margin + 0.1  # knee past its limit by more than the margin
    with pytest.raises(CommandFault, match=f"left_knee_joint is {margin + 0.1:.2f} rad outside"):
        CommandLimits().apply(command(q), state(), None, 0.0)
    # Smaller excursions are clipped to the stop band: the knee (139 N.m motor) with kp 150 may be
    # targeted 139 / 150 = 0.93 rad past its limit, where the PD pushes it into the stop with the
    # motor's rating. Joint pressed 0.05 rad into its (soft) stop, so the torque clip does not bind.
    q[3] = g1.Q_MAX[3] + 1.5
    s = state(q=np.where(np.arange(N) == 3, g1.Q_MAX[3] + 0.05, g1.DEFAULT_POSE))
    out, report = CommandLimits().apply(command(q, kp=150.0, kd=0.0), s, None, 0.0)
    assert out.q[3] == pytest.approx(g1.Q_MAX[3] + 139.0 / 150.0)
    assert report.joint_limit == 1 and report.torque_limit == 0
    # inside the band a target past the range passes unchanged
    q[3] = g1.Q_MAX[3] + 0.5
    out, report = CommandLimits().apply(command(q, kp=150.0, kd=0.0), s, None, 0.0)
    assert out.q[3] == q[3] and not report.any
    # A custom margin is honoured (the bridge may set its own).
    q[3] = g1.Q_MAX[3] + 0.6
    with pytest.raises(CommandFault, match=r"left_knee_joint is 0.60 rad outside"):
        CommandLimits(gross_margin_rad=0.5).apply(command(q), state(), None, 0.0)


def test_default_margin_passes_measured_tracking_and_refuses_a_saturated_policy():
    """The margin's calibration (module docstring, ``python -m sim2sim.limits_report``): normal
    tracking reached 2.15 rad past the ankle pitch limit; the default leaves >= 1.5x that. A
    policy whose actions saturate at its clip (default ± action_scale x action_clip) is refused
    in either direction."""
    from gmt_ros.core.command_limits import GROSS_MARGIN_RAD
    from gmt_ros.core.contract import load_contract

    lim = CommandLimits()
    assert lim.gross_margin_rad == GROSS_MARGIN_RAD >= 1.5 * 2.15
    q = g1.DEFAULT_POSE.copy()
    q[10] = g1.Q_MAX[10] + 2.15  # right ankle pitch, as measured under DR gmt
    out, report = lim.apply(command(q, kp=40.0), state(), None, 0.0)
    assert out.q[10] <= g1.Q_MAX[10] + 50.0 / 40.0 and report.any  # stop band (50 N.m motor) or torque clip
    contract = load_contract("twist2_student")
    for sign in (+1.0, -1.0):
        q = g1.DEFAULT_POSE.copy()
        q[list(contract.slots)] = contract.default_pose + sign * contract.action_scale * contract.action_clip
        with pytest.raises(CommandFault, match="rad outside its limits"):
            lim.check(command(q))


def test_a_target_that_would_push_a_joint_into_its_stop_harder_than_the_stated_torque_is_clipped():
    """The stated stop torque is what the PD may push a joint into its stop with: with 20 N.m
    for the knee (kp 150) a target 0.5 rad past the limit is clipped to 20 / 150 rad past it,
    although the motor (139 N.m) could push harder; at the stop the PD then gives 20 N.m."""
    lim = CommandLimits(stop_torque=np.where(np.arange(N) == 3, 20.0, g1.TAU_MAX))
    q = g1.DEFAULT_POSE.copy()
    q[3] = g1.Q_MAX[3] + 0.5
    s = state(q=np.where(np.arange(N) == 3, g1.Q_MAX[3] - 0.2, g1.DEFAULT_POSE))
    out, report = lim.apply(command(q, kp=150.0, kd=0.0), s, None, 0.0)
    assert out.q[3] == pytest.approx(g1.Q_MAX[3] + 20.0 / 150.0)
    assert 150.0 * (out.q[3] - g1.Q_MAX[3]) == pytest.approx(20.0)
    assert report.joint_limit == 1
    assert lim.violations(command(q, kp=150.0)) and not lim.violations(out)


def test_target_excess_per_slot():
    lim = CommandLimits()
    q = g1.DEFAULT_POSE.copy()
    q[3] = g1.Q_MAX[3] + 0.25
    q[4] = g1.Q_MIN[4] - 0.5
    cmd = command(q)
    cmd.kp[7] = 0.0  # no stiffness: not a target the limits act on
    excess = lim.target_excess(cmd)
    assert excess[3] == pytest.approx(0.25) and excess[4] == pytest.approx(0.5)
    assert excess[7] == -np.inf
    inside = np.delete(np.arange(N), [3, 4, 7])
    assert np.all(excess[inside] <= 0)
    expected = np.maximum(g1.Q_MIN - q, q - g1.Q_MAX)
    np.testing.assert_allclose(excess[inside], expected[inside])


def test_velocity_limit_bounds_the_step_per_tick():
    q = g1.DEFAULT_POSE.copy()
    q[0] += 0.5
    dt = 0.002
    out, report = CommandLimits().apply(command(q, kp=1.0), state(), g1.DEFAULT_POSE, dt)
    # hip pitch motor: 32 rad/s -> 0.064 rad in 2 ms
    assert out.q[0] == pytest.approx(g1.DEFAULT_POSE[0] + 32.0 * dt)
    assert report.velocity_limit == 1


def test_target_clipped_so_pd_torque_stays_within_motor_limit():
    # left wrist pitch (slot 20): 5 N.m motor. kp 40, target 0.5 rad away -> 20 N.m unclipped.
    q = g1.DEFAULT_POSE.copy()
    q[20] += 0.5
    dq = np.zeros(N)
    dq[20] = -0.1  # kd term: 2 * (0 - (-0.1)) = +0.2 N.m
    out, report = CommandLimits().apply(command(q, kp=40.0, kd=2.0), state(dq=dq), None, 0.0)
    expected = g1.DEFAULT_POSE[20] + (5.0 - 0.2) / 40.0
    assert out.q[20] == pytest.approx(expected)
    tau = 40.0 * (out.q[20] - g1.DEFAULT_POSE[20]) + 2.0 * (0.0 - dq[20])
    assert tau == pytest.approx(5.0)
    assert report.torque_limit == 1


def test_violations_reports_what_reached_the_robot_outside_limits():
    lim = CommandLimits()
    assert lim.violations(command()) == []
    q = g1.DEFAULT_POSE.copy()
    q[5] = 0.3  # ankle roll limit 0.2618: past it, but inside the stop band (50 N.m / kp 40 = 1.25 rad)
    assert lim.violations(command(q)) == []
    q[5] = 0.2618 + 1.3
    assert "into its stop with more than its stop torque at left_ankle_roll_joint" in lim.violations(command(q))[0]
    bad = command()
    bad.q[1] = np.inf
    assert "not finite" in lim.violations(bad)[0]


def test_fast_acceptance_agrees_with_the_detailed_check():
    """check() accepts through one vectorised test and explains refusals on a slower path: both
    must agree on every command (random gains, targets near and far past the limits, NaN)."""
    rng = np.random.default_rng(7)
    lim = CommandLimits()
    margin = lim.gross_margin_rad
    refused = 0
    gross = 0
    for _ in range(400):
        q = rng.uniform(g1.Q_MIN - 0.3, g1.Q_MAX + 0.3)
        if rng.random() < 0.6:  # one slot straddling the gross margin, above or below its range
            s = rng.integers(N)
            off = margin + rng.uniform(-0.2, 0.2)
            q[s] = g1.Q_MAX[s] + off if rng.random() < 0.5 else g1.Q_MIN[s] - off
        cmd = command(q=q, kp=40.0)
        cmd.kp = rng.choice([0.0, 40.0, 600.0], N, p=[0.2, 0.78, 0.02])
        cmd.kd = rng.choice([0.0, 2.0, 30.0, -1.0], N, p=[0.2, 0.76, 0.02, 0.02])
        if rng.random() < 0.05:
            cmd.tau[rng.integers(N)] = np.nan
        try:
            lim.check(cmd)
            detailed_ok = True
        except CommandFault as exc:
            detailed_ok = False
            gross += "outside its limits" in str(exc)
        refused += not detailed_ok
        assert lim._passes(cmd) == detailed_ok
    assert 50 < refused < 400  # both outcomes were exercised
    assert gross > 5  # ... the gross margin among them (gain faults are reported first)


def test_wrong_shape_is_a_fault_naming_the_field():
    cmd = command()
    cmd.q = np.zeros(28)
    with pytest.raises(CommandFault, match=r"JointCommand.q has shape \(28,\), expected \(29,\)"):
        CommandLimits().check(cmd)
