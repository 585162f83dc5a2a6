"""The supervisor's mode machine, watchdogs and start-up checks (pure logic, explicit clock)."""
import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.command_table import CommandTable
from gmt_ros.core.contract import ContractId
from gmt_ros.core.state import RobotState
from gmt_ros.core.supervisor import Mode, Request, Supervisor, SupervisorConfig, minimum_jerk

N = g1.NUM_BODY_JOINTS
ALL_SLOTS = tuple(range(N))


def targets(policy_slots=ALL_SLOTS):
    """A command table: the policy drives ``policy_slots``, the other slots are held."""
    policy = np.asarray(policy_slots)
    return CommandTable(identity=ContractId("test", "0" * 64), policy_names=tuple(g1.JOINT_NAMES[s] for s in policy),
                        policy_slots=policy, held_slots=np.setdiff1d(np.arange(N), policy),
                        default_pose=g1.DEFAULT_POSE.copy(), kp=np.full(N, 40.0), kd=np.full(N, 2.0))


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
    assert sup.request(Request.START, 0.0).message == "damping"  # damping needs no robot check
    out = sup.request(Request.START, 0.0)
    assert not out.accepted and "start-up check has not run" in out.message and sup.mode is Mode.DAMPING
    sup.startup_check(5, ALL_SLOTS)
    out = sup.request(Request.START, 0.0)
    assert out.accepted and out.message == "ramping"
    d = sup.tick(0.5, robot(), 0.5, None, None)  # ramp start sampled here
    np.testing.assert_allclose(d.command.q, np.zeros(N))
    d = sup.tick(0.75, robot(), 0.75, None, None)  # a quarter: 10/64 - 15/256 + 6/1024 of the way
    np.testing.assert_allclose(d.command.q, (10 / 64 - 15 / 256 + 6 / 1024) * g1.DEFAULT_POSE, atol=1e-9)
    d = sup.tick(1.0, robot(), 1.0, None, None)  # half way: minimum-jerk blend = 0.5
    np.testing.assert_allclose(d.command.q, 0.5 * g1.DEFAULT_POSE, atol=1e-9)
    d = sup.tick(1.5, robot(), 1.5, None, None)
    assert sup.mode is Mode.HOLD
    assert sup.request(Request.POLICY, 1.5).message == "policy"
    d = sup.tick(1.52, robot(g1.DEFAULT_POSE), 1.52, policy_target(), 1.51)
    assert d.mode is Mode.POLICY
    np.testing.assert_allclose(d.command.q, g1.DEFAULT_POSE + 0.01)


def test_policy_refused_unless_holding():
    sup = Supervisor(targets())
    out = sup.request(Request.POLICY, 0.0)
    assert not out.accepted and "refused policy: only from hold (now zero_torque)" == out.message
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
    assert sup.request(Request.START, t).message == "refused start: fault latched (e-stop)"
    sup.buttons(frozenset(), t)
    sup.buttons(frozenset({"X"}), t)  # clear
    assert sup.fault is None and sup.mode is Mode.DAMPING


def test_buttons_fire_on_the_press_edge_only():
    sup, t = started()
    sup.buttons(frozenset(), t)  # the first sample only sets what is held
    sup.buttons(frozenset({"A"}), t)
    assert sup.mode is Mode.POLICY
    sup.request(Request.HOLD, t)
    sup.buttons(frozenset({"A"}), t)  # still held: no new press
    assert sup.mode is Mode.RAMP


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
    fallen = robot()
    d = sup.tick(0.01, fallen, 0.01, None, None)
    assert d.mode is Mode.DAMPING and "pelvis height estimate 0.30 m" in d.fault
    assert sup.fall_state is fallen  # the state the fault latched on, for the bridge's log
    sup.tick(0.012, robot(), 0.012, None, None)
    assert sup.fall_state is fallen  # not replaced while the fault stays latched
    sup.request(Request.CLEAR, 0.02)
    assert sup.fault is None and sup.fall_state is None


def test_joint_overspeed_is_a_fault_for_either_sign():
    sup, t = started()
    dq = np.zeros(N)
    dq[9] = -40.0  # right knee, rated 20 rad/s
    d = sup.tick(t + 0.002, robot(g1.DEFAULT_POSE, dq=dq), t + 0.002, None, None)
    assert "joint overspeed: right_knee_joint at -40.0 rad/s" in d.fault


def test_startup_mismatch_refuses_to_leave_damping_and_cannot_be_cleared():
    sup = Supervisor(targets())
    missing = tuple(s for s in ALL_SLOTS if s not in (13, 14))
    msg = sup.startup_check(4, missing)
    assert "mode_machine 4 (23-DoF)" in msg and "waist_roll_joint, waist_pitch_joint" in msg
    d = sup.tick(0.0, robot(), 0.0, None, None)
    assert d.mode is Mode.DAMPING
    assert "refused start" in sup.request(Request.START, 0.0).message
    assert "cannot clear" in sup.request(Request.CLEAR, 0.0).message
    assert sup.mode is Mode.DAMPING


def test_twenty_three_joint_contract_accepts_a_29dof_robot():
    gmt_slots = g1.GMT23_SLOTS
    sup = Supervisor(targets(policy_slots=gmt_slots))
    assert sup.startup_check(5, ALL_SLOTS) is None


def test_minimum_jerk_blend_hand_values():
    # 10 s^3 - 15 s^4 + 6 s^5
    assert minimum_jerk(0.0) == 0.0 and minimum_jerk(1.0) == 1.0 and minimum_jerk(0.5) == 0.5
    assert minimum_jerk(0.25) == pytest.approx(10 / 64 - 15 / 256 + 6 / 1024)
    assert minimum_jerk(-1.0) == 0.0 and minimum_jerk(2.0) == 1.0


def test_command_table_places_policy_and_held_joints_by_slot():
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.paths import models_dir

    gmt = load_contract(models_dir() / "gmt_student" / "contract.yaml").command_table
    # GMT contract: knees kp 150 kd 4, waist kp 150, arms kp 40 kd 5, wrists held at 0 with kp 20 kd 1.
    assert gmt.kp[3] == 150 and gmt.kd[3] == 4 and gmt.kp[13] == 150 and gmt.kp[18] == 40 and gmt.kd[18] == 5
    for s in g1.WRIST_SLOTS:
        assert (gmt.default_pose[s], gmt.kp[s], gmt.kd[s]) == (0.0, 20.0, 1.0)
    assert gmt.default_pose[16] == 0.4 and gmt.default_pose[23] == -0.4 and gmt.default_pose[18] == 1.2
    assert gmt.required_slots == ALL_SLOTS and gmt.needs_29dof  # waist roll/pitch are policy joints
    twist = load_contract("twist2_student").command_table
    assert twist.required_slots == ALL_SLOTS and twist.needs_29dof
    np.testing.assert_allclose(twist.default_pose, g1.DEFAULT_POSE)


def test_command_table_refuses_a_joint_neither_driven_nor_held():
    from types import SimpleNamespace

    legs = g1.JOINT_NAMES[:12]
    contract = SimpleNamespace(name="legs_only", joint_names=legs, default_pose=np.zeros(12), kp=np.ones(12),
                               kd=np.ones(12), held_joints=(), identity=ContractId("legs_only", "0" * 64))
    with pytest.raises(ValueError, match=r"contract legs_only: body joint\(s\) neither driven by the policy nor held: \['waist_yaw_joint'"):
        CommandTable.from_contract(contract)


def test_legs_only_policy_does_not_need_the_29dof_body():
    from types import SimpleNamespace

    from gmt_ros.core.contract import HeldJoint

    legs = g1.JOINT_NAMES[:12] + ("waist_yaw_joint",)
    held = tuple(HeldJoint(n, 0.0, 10.0, 1.0) for n in g1.JOINT_NAMES[13:])
    contract = SimpleNamespace(name="x", joint_names=legs, default_pose=np.zeros(13), kp=np.ones(13),
                               kd=np.ones(13), held_joints=held, identity=ContractId("x", "0" * 64))
    assert not CommandTable.from_contract(contract).needs_29dof


def test_first_button_sample_is_not_a_press_but_a_held_estop_fires():
    sup = Supervisor(targets())
    sup.startup_check(5, ALL_SLOTS)
    assert sup.buttons(frozenset({"Start"}), 0.0) == []  # held when the link came up
    assert sup.mode is Mode.ZERO_TORQUE
    sup.buttons(frozenset(), 0.01)
    assert [o.message for o in sup.buttons(frozenset({"Start"}), 0.02)] == ["damping"]
    other = Supervisor(targets())
    other.buttons(frozenset({"Select"}), 0.0)
    assert other.fault == "e-stop" and other.mode is Mode.DAMPING


def test_estop_cannot_be_cleared_while_its_buttons_are_held():
    sup, t = started()
    sup.buttons(frozenset({"L1", "R1"}), t)
    assert sup.fault == "e-stop"
    sup.buttons(frozenset({"L1", "R1", "X"}), t)  # clear pressed, e-stop still held: latched again
    assert sup.fault == "e-stop"
    sup.buttons(frozenset(), t)
    sup.buttons(frozenset({"X"}), t)
    assert sup.fault is None


def test_hold_from_policy_ramps_from_the_measured_pose_then_holds():
    sup, t = started()
    sup.request(Request.POLICY, t)
    far = g1.DEFAULT_POSE + 0.2  # where the policy took the robot
    target = policy_target()
    target.q = far.copy()
    for _ in range(20):  # the velocity limit lets the target move 0.04 rad or more per tick
        t += 0.002
        d = sup.tick(t, robot(far), t, target, t)
    np.testing.assert_allclose(d.command.q, far)
    out = sup.request(Request.HOLD, t)
    assert out.accepted and sup.mode is Mode.RAMP
    d = sup.tick(t + 0.002, robot(far), t + 0.002, None, None)
    np.testing.assert_allclose(d.command.q, far)  # no jump to the default pose
    d = sup.tick(t + 0.502, robot(far), t + 0.502, None, None)  # half of ramp_time_s 1.0
    np.testing.assert_allclose(d.command.q, far - 0.1, atol=1e-9)
    sup.tick(t + 1.003, robot(far), t + 1.003, None, None)
    assert sup.mode is Mode.HOLD


def test_one_event_per_fault_names_the_cause_and_status_reports_it():
    sup, t = started(SupervisorConfig(ramp_time_s=1.0, target_timeout_s=0.1))
    sup.new_events()
    sup.request(Request.POLICY, t)
    s = robot(g1.DEFAULT_POSE)
    sup.tick(t + 0.002, s, t + 0.002, policy_target(), t)
    sup.tick(t + 0.102, s, t + 0.102, policy_target(), t)
    sup.tick(t + 0.104, s, t + 0.104, policy_target(), t)  # still stale: no second event
    events = [m for _, m in sup.new_events()]
    assert events == ["hold -> policy: policy on",
                      "FAULT: PD target stale (102.0 ms > 100.0 ms): policy stopped or lagging -> damping (was policy)"]
    assert sup.new_events() == []
    st = sup.status()
    assert st["mode"] == "damping" and st["fault"].startswith("PD target stale") and st["fault_time"] == t + 0.102
    assert st["last_event"]["message"].startswith("FAULT: PD target stale") and st["startup_error"] is None
    assert st["event_count"] == sup.event_count and set(st["clip"]) == {"joint_limit", "velocity_limit", "torque_limit"}
    out = sup.request(Request.CLEAR, t + 0.2)
    assert out.accepted and out.message.startswith("cleared: PD target stale")
    assert sup.status()["fault"] is None and sup.status()["fault_time"] is None


def test_clip_totals_count_clipped_slot_ticks():
    sup, t = started()
    sup.request(Request.POLICY, t)
    target = policy_target()
    target.q[0] = g1.DEFAULT_POSE[0] + 0.5  # hip pitch 32 rad/s: 0.064 rad per 2 ms, kp 40 -> 20 N.m, within 88
    before = sup.clip_totals.velocity_limit
    d = sup.tick(t + 0.002, robot(g1.DEFAULT_POSE), t + 0.002, target, t + 0.001)
    assert d.command.q[0] == pytest.approx(g1.DEFAULT_POSE[0] + 32.0 * 0.002)
    assert d.clip.velocity_limit == 1 and sup.clip_totals.velocity_limit == before + 1


def test_tilt_is_the_inclination_of_the_pelvis_z_axis():
    # roll 0.7 and pitch 0.7 (each below 0.9 rad = 51.6 deg) incline the z axis by
    # acos(cos 0.7 * cos 0.7) = acos(0.5850) = 54.2 deg
    sup, t = started(SupervisorConfig(ramp_time_s=1.0, fall_tilt_rad=0.9))
    d = sup.tick(t + 0.002, robot(g1.DEFAULT_POSE, rpy=(0.7, 0.7, 0.3)), t + 0.002, None, None)
    assert d.mode is Mode.DAMPING and "fall detected: tilt 54 deg > 52 deg" in d.fault


def test_fall_checks_only_while_driving_the_joints():
    sup = Supervisor(targets(), SupervisorConfig(), fall_height=lambda s: 0.1)
    lying = robot(rpy=(1.5, 0.0, 0.0))
    assert sup.tick(0.0, lying, 0.0, None, None).fault is None  # zero torque: the robot may lie down
    sup.startup_check(5, ALL_SLOTS)
    sup.request(Request.START, 0.0)
    assert sup.tick(0.01, lying, 0.01, None, None).fault is None  # damping
    sup.request(Request.START, 0.01)
    assert "fall detected: tilt 86 deg" in sup.tick(0.02, lying, 0.02, None, None).fault


def test_owner_fault_latches_damping_and_unknown_request_is_an_error():
    sup, t = started()
    sup.fault_now("invalid PD target on /gmt/joint_targets: missing joints", t)
    assert sup.mode is Mode.DAMPING and sup.fault.startswith("invalid PD target")
    with pytest.raises(ValueError, match="'jump' is not a valid Request"):
        sup.request("jump", t)


def test_config_values_are_checked():
    with pytest.raises(ValueError, match=r"supervisor: state_timeout_s must be a positive number, got -1.0"):
        SupervisorConfig(state_timeout_s=-1.0)
    with pytest.raises(ValueError, match="supervisor: ramp_time_s must be a number >= 0, got nan"):
        SupervisorConfig(ramp_time_s=float("nan"))
    with pytest.raises(ValueError, match=r"button combination 'L1\+Q' for estop names unknown buttons \['Q'\]"):
        SupervisorConfig(buttons={"estop": ("L1+Q",)})


def test_policy_target_speed_is_measured_across_the_policy_period_not_per_writer_tick():
    sup, t = started()
    sup.request(Request.POLICY, t)
    knee = g1.SLOT_OF["left_knee_joint"]  # dq_max 20 rad/s: 0.04 rad per 2 ms tick, 0.4 per 20 ms
    s = robot(g1.DEFAULT_POSE)
    target = policy_target()
    stamp = t
    for _ in range(10):  # the first target after hold: measured tick to tick from the hold pose
        t += 0.002
        d = sup.tick(t, s, t, target, stamp)
    np.testing.assert_allclose(d.command.q, target.q)

    # A 0.3 rad step 20 ms later is within 20 rad/s over the period: applied at once, not ramped.
    stepped = policy_target()
    stepped.q[knee] += 0.3
    stamp += 0.02
    t += 0.002
    d = sup.tick(t, s, t, stepped, stamp)
    assert d.command.q[knee] == pytest.approx(target.q[knee] + 0.3)
    assert d.clip.velocity_limit == 0

    # A 1.0 rad step: at most 20 rad/s x the time since the previous target was first applied
    # (22 ms here), then on toward it at 0.04 rad per tick while it is held.
    first_applied = t
    jump = policy_target()
    jump.q[knee] = stepped.q[knee] + 1.0
    stamp += 0.02
    t += 0.022
    d = sup.tick(t, s, t, jump, stamp)
    assert d.clip.velocity_limit == 1
    assert d.command.q[knee] == pytest.approx(stepped.q[knee] + 20.0 * (t - first_applied))
    before = d.command.q[knee]
    t += 0.002
    d = sup.tick(t, s, t, jump, stamp)
    assert d.command.q[knee] == pytest.approx(before + 20.0 * 0.002)
