"""The supervisor's mode machine, watchdogs and start-up checks (pure logic, explicit clock)."""
import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.state import RobotState
from gmt_ros.core.supervisor import Mode, Request, Supervisor, SupervisorConfig, Targets

N = g1.NUM_BODY_JOINTS
ALL_SLOTS = tuple(range(N))


def targets(required=ALL_SLOTS, needs_29dof=True):
    return Targets(default_pose=g1.DEFAULT_POSE.copy(), kp=np.full(N, 40.0), kd=np.full(N, 2.0),
                   required_slots=required, needs_29dof=needs_29dof)


def robot(q=None, rpy=(0.0, 0.0, 0.0), dq=None):
    return RobotState(stamp=0.0, joint_pos=np.zeros(N) if q is None else q,
                      joint_vel=np.zeros(N) if dq is None else dq,
                      imu_quat=rotations.from_rpy(np.array(rpy)), imu_gyro=np.zeros(3))


def started(cfg=None):
    """A supervisor that passed its start-up check and is in HOLD at t = 10 s."""
    sup = Supervisor(targets(), cfg or SupervisorConfig(ramp_time_s=1.0))
    assert sup.startup_check(5, ALL_SLOTS) is None
    s = robot(g1.DEFAULT_POSE)  # already near the pose, so the torque clip does not bind
    assert sup.tick(0.0, s, 0.0, None, None).mode is Mode.ZERO_TORQUE
    sup.request(Request.START, 0.0)
    sup.request(Request.START, 0.0)
    t = 0.0
    while sup.mode is Mode.RAMP:
        t += 0.002
        d = sup.tick(t, s, t, None, None)
    assert sup.mode is Mode.HOLD and t == pytest.approx(1.0, abs=0.01)
    np.testing.assert_allclose(d.command.q, g1.DEFAULT_POSE)
    return sup, t


def policy_target():
    return JointCommand(q=g1.DEFAULT_POSE + 0.01, dq=np.zeros(N), kp=np.full(N, 40.0), kd=np.full(N, 2.0),
                        tau=np.zeros(N), enabled=np.ones(N, bool))


def test_start_sequence_zero_torque_damping_ramp_hold_policy():
    sup = Supervisor(targets(), SupervisorConfig(ramp_time_s=1.0))
    d = sup.tick(0.0, robot(), 0.0, None, None)
    assert d.mode is Mode.ZERO_TORQUE and np.all(d.command.kp == 0) and np.all(d.command.kd == 0)
    assert "start-up check" in sup.request(Request.START, 0.0) or sup.mode is Mode.DAMPING
    sup.startup_check(5, ALL_SLOTS)
    assert sup.request(Request.START, 0.0) == "ramping"
    d = sup.tick(0.5, robot(), 0.5, None, None)  # ramp start sampled here
    np.testing.assert_allclose(d.command.q, np.zeros(N))
    d = sup.tick(1.0, robot(), 1.0, None, None)  # half way: minimum-jerk blend = 0.5
    np.testing.assert_allclose(d.command.q, 0.5 * g1.DEFAULT_POSE, atol=1e-9)
    d = sup.tick(1.5, robot(), 1.5, None, None)
    assert sup.mode is Mode.HOLD
    assert sup.request(Request.POLICY, 1.5) == "policy"
    d = sup.tick(1.52, robot(g1.DEFAULT_POSE), 1.52, policy_target(), 1.51)
    assert d.mode is Mode.POLICY
    np.testing.assert_allclose(d.command.q, g1.DEFAULT_POSE + 0.01)


def test_policy_refused_unless_holding():
    sup = Supervisor(targets())
    assert "refused policy" in sup.request(Request.POLICY, 0.0)
    assert sup.mode is Mode.ZERO_TORQUE


@pytest.mark.parametrize("mode_to_reach", ["zero_torque", "damping", "ramp", "hold", "policy"])
def test_estop_button_combo_damps_from_every_mode_and_latches(mode_to_reach):
    sup = Supervisor(targets(), SupervisorConfig(ramp_time_s=1.0))
    sup.startup_check(5, ALL_SLOTS)
    s = robot(g1.DEFAULT_POSE)
    t = 0.0
    path = {"zero_torque": [], "damping": [Request.START], "ramp": [Request.START, Request.START]}
    if mode_to_reach in path:
        for r in path[mode_to_reach]:
            sup.request(r, t)
    else:
        sup, t = started()
        if mode_to_reach == "policy":
            sup.request(Request.POLICY, t)
    assert sup.mode.value == mode_to_reach
    sup.buttons(frozenset({"L1", "R1"}), t)
    d = sup.tick(t + 0.002, s, t + 0.002, policy_target(), t + 0.001)
    assert d.mode is Mode.DAMPING and d.fault == "e-stop"
    assert np.all(d.command.kp == 0) and np.all(d.command.kd == g1.DAMPING_KD)
    assert "refused start" in sup.request(Request.START, t)
    sup.buttons(frozenset(), t)
    sup.buttons(frozenset({"X"}), t)  # clear
    assert sup.fault is None and sup.mode is Mode.DAMPING


def test_buttons_fire_on_the_press_edge_only():
    sup, t = started()
    sup.buttons(frozenset({"A"}), t)
    assert sup.mode is Mode.POLICY
    sup.request(Request.HOLD, t)
    sup.buttons(frozenset({"A"}), t)  # still held: no new press
    assert sup.mode is Mode.HOLD


def test_stale_state_damps_on_the_first_tick_past_the_timeout():
    sup, t = started(SupervisorConfig(ramp_time_s=1.0, state_timeout_s=0.05))
    s = robot(g1.DEFAULT_POSE)
    assert sup.tick(t + 0.049, s, t, None, None).mode is Mode.HOLD
    d = sup.tick(t + 0.051, s, t, None, None)
    assert d.mode is Mode.DAMPING and "robot state stale" in d.fault


def test_stale_target_in_policy_mode_damps():
    sup, t = started(SupervisorConfig(ramp_time_s=1.0, target_timeout_s=0.1))
    sup.request(Request.POLICY, t)
    s = robot(g1.DEFAULT_POSE)
    assert sup.tick(t + 0.002, s, t + 0.002, policy_target(), t).mode is Mode.POLICY
    d = sup.tick(t + 0.102, s, t + 0.102, policy_target(), t)
    assert d.mode is Mode.DAMPING and "PD target stale" in d.fault


def test_nan_target_faults_instead_of_being_sent():
    sup, t = started()
    sup.request(Request.POLICY, t)
    bad = policy_target()
    bad.q[4] = np.nan
    d = sup.tick(t + 0.002, robot(g1.DEFAULT_POSE), t + 0.002, bad, t + 0.001)
    assert d.mode is Mode.DAMPING and "left_ankle_pitch_joint" in d.fault
    assert np.all(np.isfinite(d.command.q))


def test_tilt_fall_detection():
    sup, t = started(SupervisorConfig(ramp_time_s=1.0, fall_tilt_rad=0.9))
    assert sup.tick(t + 0.002, robot(g1.DEFAULT_POSE, rpy=(0.0, 0.85, 0.0)), t + 0.002, None, None).mode is Mode.HOLD
    d = sup.tick(t + 0.004, robot(g1.DEFAULT_POSE, rpy=(0.0, -0.95, 0.0)), t + 0.004, None, None)
    assert d.mode is Mode.DAMPING and "fall detected: tilt 54 deg" in d.fault


def test_height_estimate_fall_detection():
    sup = Supervisor(targets(), SupervisorConfig(ramp_time_s=0.0, fall_height_m=0.35), fall_height=lambda s: 0.3)
    sup.startup_check(5, ALL_SLOTS)
    sup.request(Request.START, 0.0)
    sup.request(Request.START, 0.0)
    d = sup.tick(0.01, robot(), 0.01, None, None)
    assert d.mode is Mode.DAMPING and "pelvis height estimate 0.30 m" in d.fault


def test_joint_overspeed_is_a_fault_for_either_sign():
    sup, t = started()
    dq = np.zeros(N)
    dq[9] = -40.0  # right knee, rated 20 rad/s
    d = sup.tick(t + 0.002, robot(g1.DEFAULT_POSE, dq=dq), t + 0.002, None, None)
    assert "joint overspeed: right_knee_joint at -40.0 rad/s" in d.fault


def test_startup_mismatch_refuses_to_leave_damping_and_cannot_be_cleared():
    sup = Supervisor(targets(required=ALL_SLOTS, needs_29dof=True))
    missing = tuple(s for s in ALL_SLOTS if s not in (13, 14))
    msg = sup.startup_check(4, missing)
    assert "mode_machine 4 (23-DoF)" in msg and "waist_roll_joint, waist_pitch_joint" in msg
    d = sup.tick(0.0, robot(), 0.0, None, None)
    assert d.mode is Mode.DAMPING
    assert "refused start" in sup.request(Request.START, 0.0)
    assert "cannot clear" in sup.request(Request.CLEAR, 0.0)
    assert sup.mode is Mode.DAMPING


def test_twenty_three_joint_contract_accepts_a_29dof_robot():
    gmt_slots = g1.GMT23_SLOTS
    sup = Supervisor(targets(required=gmt_slots, needs_29dof=True))
    assert sup.startup_check(5, ALL_SLOTS) is None
