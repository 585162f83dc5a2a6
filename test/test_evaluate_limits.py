"""`run_episode`'s send path: the policy's targets through the bridge's CommandLimits (default) or raw.

Real MuJoCo and the shipped TWIST2 student; episodes of 0.5-1.5 s.
"""
import json
import math

import numpy as np
import pytest

from gmt_ros.core import g1
from gmt_ros.core.clip_library import load_named_clip
from gmt_ros.core.command_limits import CommandLimits
from gmt_ros.core.motion import window_from_clip
from gmt_ros.core.policy import TrackingPolicy
from sim2sim import limits_report
from sim2sim.evaluate import BRIDGE_RATE_HZ, EpisodeTrace, bridge_fall_check, run_episode
from sim2sim.simulator import G1Sim


@pytest.fixture(scope="module")
def walk():
    return load_named_clip("twist2/walk_004")


RANGE = np.zeros(g1.NUM_BODY_JOINTS)  # stop_torque 0: the joint-range clip of earlier versions


@pytest.fixture(scope="module")
def limited(contract, policy, walk):
    # The policy's ankle targets lead the joints past their limits within the first second: the
    # joint-range clip acts (the default stop band lets them through, see below).
    return run_episode(contract, walk, seconds=1.0, policy=policy, trace=True,
                       command_limits=CommandLimits(gross_margin_rad=math.inf, stop_torque=RANGE))


def broken_policy(contract, scale=100.0):
    broken = TrackingPolicy(contract)
    broken.network = limits_report._ScaledNetwork(broken.network, scale)
    return broken


def test_raw_targets_go_straight_to_the_motors(contract, policy, squat):
    """command_limits=None is the loop without the bridge: replaying the policy's commands by
    hand on a fresh simulator gives the same robot, tick by tick."""
    result = run_episode(contract, squat, seconds=0.5, policy=policy, trace=True, command_limits=None,
                         fall_check=None)
    tr = result.trace
    assert result.max_imu_tilt_rad is None and result.fall_detected is None
    assert result.command_limits == "raw" and result.command_fault is None
    assert not result.clipped.any and not tr.clip_counts.any()
    np.testing.assert_array_equal(tr.sent_joint_pos, tr.target_joint_pos)

    sim = G1Sim(seed=0)
    f0 = squat.sample(0.0)
    sim.reset(root_pos=f0.root_pos[0], root_quat=f0.root_quat[0], joint_pos=f0.joint_pos[0],
              root_lin_vel=f0.root_lin_vel[0], root_ang_vel=f0.root_ang_vel[0], joint_vel=f0.joint_vel[0])
    mine = TrackingPolicy(contract)
    mine.reset(sim.state())
    for i in range(len(tr)):
        t = i * 0.02
        np.testing.assert_array_equal(sim.state().joint_pos, tr.joint_pos[i])
        cmd = mine.step(sim.state(), window_from_clip(squat, clip_time=t, start_time=t,
                                                      conventions=contract.reference), now=t)
        np.testing.assert_array_equal(cmd.q, tr.target_joint_pos[i])
        sim.set_command(cmd)
        sim.step(20)


def test_the_bridge_send_path_is_the_bridges_supervisor(contract, policy, squat):
    """One send path: what the offline loop sends is what ``Supervisor.tick`` decides, bridge tick
    by bridge tick. Replayed by hand on a fresh simulator: a supervisor brought from zero torque
    to policy mode as the bridge's operator does it, fed the mapped target at 500 Hz."""
    from gmt_ros.core.command_table import TargetMapper
    from gmt_ros.core.height_estimate import PelvisHeightEstimator
    from gmt_ros.core.supervisor import Mode, Supervisor, SupervisorConfig

    result = run_episode(contract, squat, seconds=0.3, policy=policy, trace=True, start="default")
    tr = result.trace
    sim = G1Sim(seed=0)
    sim.reset()
    sup = Supervisor(contract.command_table, SupervisorConfig(ramp_time_s=0.0), CommandLimits(),
                     fall_height=PelvisHeightEstimator())
    sup.startup_check(2, range(29), now=-0.006)
    sup.request("start", -0.006)
    sup.request("start", -0.006)
    sup.tick(-0.004, sim.state(), -0.004, None, None)
    sup.tick(-0.002, sim.state(), -0.002, None, None)
    assert sup.request("policy", -0.002).accepted and sup.mode is Mode.POLICY
    mapper = TargetMapper(contract.command_table)
    mine = TrackingPolicy(contract)
    mine.reset(sim.state())
    for i in range(len(tr)):
        t = i * 0.02
        state = sim.state()
        cmd = mine.step(state, window_from_clip(squat, clip_time=t, start_time=t, conventions=contract.reference), now=t)
        target = mapper.command(contract.joint_names, cmd.q[list(contract.slots)])
        for b in range(10):
            decision = sup.tick(t + 0.002 * b, state if b == 0 else sim.state(), t + 0.002 * b, target, t)
            assert decision.fault is None
            if b == 0:
                np.testing.assert_array_equal(decision.command.q, tr.sent_joint_pos[i])
            sim.set_command(decision.command)
            sim.step(2)
    np.testing.assert_array_equal(sim.state().joint_pos, run_episode(
        contract, squat, seconds=0.32, policy=policy, start="default", trace=True).trace.joint_pos[-1])


def test_bridge_limits_clip_the_targets_and_report_it(limited, contract):
    r, tr = limited, limited.trace
    assert r.command_limits == "custom" and r.command_fault is None and not r.fell
    # Raw targets past the joint limits (the policy leads the ankles), but what reached the motors
    # was within them (stop_torque 0: the stop band is the range).
    excess = np.maximum(g1.Q_MIN - tr.target_joint_pos, tr.target_joint_pos - g1.Q_MAX)
    assert r.max_target_excess_rad > 0.1
    assert r.max_target_excess_rad == pytest.approx(excess.max())
    worst_row, worst_slot = np.unravel_index(np.argmax(excess), excess.shape)
    assert r.max_target_excess_joint == g1.JOINT_NAMES[worst_slot]
    assert r.max_target_excess_time_s == pytest.approx(tr.time_s[worst_row])
    assert np.all(tr.sent_joint_pos >= g1.Q_MIN - 1e-12) and np.all(tr.sent_joint_pos <= g1.Q_MAX + 1e-12)
    assert np.any(tr.sent_joint_pos != tr.target_joint_pos)
    # Per-tick counts add up to the episode's totals, and every reason is counted where it acts.
    totals = tr.clip_counts.sum(axis=0)
    assert tuple(totals) == (r.clipped.joint_limit, r.clipped.velocity_limit, r.clipped.torque_limit)
    assert r.clipped.joint_limit > 0 and r.clipped.velocity_limit > 0
    # Counted per bridge tick (500 Hz) and slot: the target stays for the 10 bridge ticks of a policy tick.
    assert r.clipped.joint_limit == 10 * np.count_nonzero(excess > 0)
    report = r.as_dict()
    assert report["clipped"] == {"joint_limit": int(totals[0]), "velocity_limit": int(totals[1]),
                                 "torque_limit": int(totals[2])}
    assert report["max_target_excess_joint"] == r.max_target_excess_joint
    assert "clipped j/v/t" in r.summary_line()


def test_default_limits_let_targets_past_the_range_through_within_the_stop_band(contract, policy, walk):
    """The bridge's default: a target may lie past a joint's limit as far as the PD pushes the
    joint into its stop with at most the motor's rated torque (tau_max / kp); the policy's ankle
    targets past the range reach the motors unchanged (bar the speed and torque clips)."""
    r = run_episode(contract, walk, seconds=1.0, policy=policy, trace=True)
    tr = r.trace
    assert r.command_limits == "bridge" and not r.fell
    kp = np.zeros(g1.NUM_BODY_JOINTS)
    kp[list(contract.slots)] = contract.kp
    reach = g1.TAU_MAX / kp
    assert np.all(tr.sent_joint_pos >= g1.Q_MIN - reach - 1e-12) and np.all(tr.sent_joint_pos <= g1.Q_MAX + reach + 1e-12)
    past = np.maximum(g1.Q_MIN - tr.sent_joint_pos, tr.sent_joint_pos - g1.Q_MAX) > 0.05
    assert past.any()  # sent past the joint range ...
    untouched = past & (tr.clip_counts.sum(axis=1) == 0)[:, None]
    np.testing.assert_array_equal(tr.sent_joint_pos[untouched], tr.target_joint_pos[untouched])  # ... as asked
    assert r.clipped.joint_limit == 0  # none of them asked for more than the rated torque at the stop


def test_limits_change_the_motion_little_when_tracking(limited, contract, policy, walk):
    raw = run_episode(contract, walk, seconds=1.0, policy=policy, command_limits=None)
    assert raw.max_target_excess_rad > 0.1 and not raw.fell and not limited.fell
    assert raw.errors["e_mpjpe_rad"] != limited.errors["e_mpjpe_rad"]  # the limits did change the motion
    assert abs(raw.errors["e_mpjpe_rad"] - limited.errors["e_mpjpe_rad"]) < 0.02  # ... by little


def test_trace_with_send_path_round_trips(limited, tmp_path):
    back = EpisodeTrace.load_npz(limited.trace.save_npz(tmp_path / "t.npz"))
    np.testing.assert_array_equal(back.sent_joint_pos, limited.trace.sent_joint_pos)
    np.testing.assert_array_equal(back.clip_counts, limited.trace.clip_counts)


def test_broken_policy_is_refused_on_its_first_command_and_ends_the_episode(contract, squat):
    """Actions x100 (saturated at the policy's own action clip): the default limits refuse it
    at once; the episode ends as a fall with the reason, instead of raising."""
    times = []
    result = run_episode(contract, squat, seconds=1.0, start="default", policy=broken_policy(contract), trace=True,
                         after_fall_s=0.2, frame_hook=lambda t, sim: times.append((t, sim.command.kp.max())))
    assert result.command_limits == "bridge"
    assert result.command_fault is not None and "outside its limits" in result.command_fault
    assert result.fell and result.fall_time_s == 0.0 and result.policy_ticks == 0 and result.duration_s == 0.0
    assert result.max_target_excess_rad > CommandLimits().gross_margin_rad
    assert "COMMAND FAULT at 0.00 s" in result.summary_line()
    assert result.as_dict()["command_fault"] == result.command_fault
    tr = result.trace
    assert len(tr) == 1 and not tr.upright[0]
    assert np.isnan(tr.sent_joint_pos[0]).all()  # nothing was sent
    # after_fall_s: the motors were damped (kp 0) from the fault on, not driven by the policy.
    assert times and all(kp == 0.0 for _, kp in times)
    assert max(t for t, _ in times) >= 0.15


def test_fault_mid_episode_keeps_the_ticks_before_it(contract, policy, walk, limited):
    """A margin below what the policy asks for faults when the target first goes past it (the
    gross check alone changes nothing before it fires, so the run is the limited one until then)."""
    q = limited.trace.target_joint_pos
    far = np.max(np.maximum(g1.Q_MIN - q, q - g1.Q_MAX), axis=1) > 0.1
    first_far = limited.trace.time_s[np.argmax(far)]
    assert far.any() and first_far > 0  # the test needs a fault after some normal ticks
    result = run_episode(contract, walk, seconds=1.0, policy=policy, trace=True,
                         command_limits=CommandLimits(gross_margin_rad=0.1, stop_torque=RANGE))
    assert result.command_fault is not None and "rad outside its limits" in result.command_fault
    assert result.fall_time_s == pytest.approx(first_far)
    assert result.policy_ticks == round(first_far / 0.02)
    assert result.duration_s == pytest.approx(first_far)
    tr = result.trace
    assert len(tr) == result.policy_ticks + 1
    assert tr.upright[:-1].all() and not tr.upright[-1]
    assert math.isfinite(result.errors["e_mpjpe_rad"])


def test_bad_send_path_settings_are_refused(contract, policy, squat):
    with pytest.raises(ValueError, match="command_limits must be"):
        run_episode(contract, squat, seconds=0.1, policy=policy, command_limits="strict")
    with pytest.raises(ValueError, match="fall_check must be"):
        run_episode(contract, squat, seconds=0.1, policy=policy, fall_check="strict")
    with pytest.raises(ValueError, match="limits_rate_hz 300"):
        run_episode(contract, squat, seconds=0.1, policy=policy, limits_rate_hz=300.0)
    assert BRIDGE_RATE_HZ == 500.0


def test_limits_report_calibration_runs_and_recommends_a_margin(capsys, tmp_path):
    rows = [limits_report.Row("a", "clip", "none", 0, 0.4, "x", 0.1, 20.0, True, 0.61, "x", 0.1, 20.0, True,
                              (1, 2, 3), 1.0),
            limits_report.Row("b", "clip", "hard", 1, 3.0, "x", 0.3, 90.0, False, 3.0, "x", 0.3, 90.0, False,
                              (1, 2, 3), 1.0)]
    # Fallen runs do not set the margin; 1.5 x 0.61 = 0.915 -> 1.0 rad.
    assert limits_report.recommend_margin(rows) == pytest.approx(1.0)
    assert limits_report.recommend_margin(rows[:1], factor=2.0) == pytest.approx(1.3)
    with pytest.raises(ValueError):
        limits_report.recommend_margin(rows[1:])
    code = limits_report.main(["--clips", "gmt/squat", "--dr", "none", "--starts", "default", "--seconds", "0.5",
                               "--json", str(tmp_path / "cal.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "| gmt/squat | default | none | 0 |" in out
    assert "recommended gross_margin_rad" in out and "broken policy (actions x 100)" in out and "refused" in out


def test_the_bridge_fall_check_runs_on_every_state_and_ends_the_episode_like_a_fall(contract, policy, squat):
    """Default: the supervisor's fall check (the bridge's thresholds) watches the episode and
    reports the extremes it saw; a detection ends the episode as a fall at that bridge tick."""
    healthy = run_episode(contract, squat, seconds=1.0, policy=policy)
    assert not healthy.fell and healthy.fall_detected is None
    # The IMU is the pelvis: the check's tilt follows the sim's own (roll/pitch) tilt.
    assert 0.0 < healthy.max_imu_tilt_rad < 0.5 and healthy.max_imu_tilt_rad >= 0.9 * healthy.max_tilt_rad
    assert 0.4 < healthy.min_height_estimate_m < 0.8

    tight = bridge_fall_check(tilt_rad=0.95 * healthy.max_imu_tilt_rad)  # fires once the squat leans that far
    r = run_episode(contract, squat, seconds=1.0, policy=policy, fall_check=tight)
    assert r.fell and r.fall_detected.startswith("fall detected: tilt") and r.command_fault is None
    assert 0.0 < r.fall_time_s < 1.0 and r.duration_s <= r.fall_time_s
    assert "FALL DETECTED at" in r.summary_line() and r.as_dict()["fall_detected"] == r.fall_detected
    low = run_episode(contract, squat, seconds=1.0, policy=policy,
                      fall_check=bridge_fall_check(height_m=healthy.min_height_estimate_m + 0.01))
    assert low.fall_detected.startswith("fall detected: pelvis height estimate")


def test_fall_report_recommends_thresholds_outside_the_upright_runs_and_the_references(capsys, tmp_path):
    from sim2sim import fall_report

    def row(fell, tilt, ref_tilt, height, ref_height):
        return fall_report.Row("a", "clip", "none", 0, fell, 1.0 if fell else None, None, tilt, height, ref_tilt,
                               ref_height, 2.0)

    rows = [row(False, 0.55, 0.86, 0.50, 0.42), row(False, 0.62, 0.30, 0.47, 0.60), row(True, 1.5, 0.3, 0.1, 0.7)]
    # The reference's 0.86 rad (a kick) + 0.15 -> 1.01 -> 1.05; its 0.42 m - 0.05 -> 0.37 -> 0.35. The fall sets neither.
    assert fall_report.recommend(rows) == (pytest.approx(1.05), pytest.approx(0.35))
    with pytest.raises(ValueError, match="no run stayed upright"):
        fall_report.recommend(rows[2:])
    assert fall_report.main(["--clips", "gmt/squat", "--dr", "none", "--starts", "default", "--seconds", "1.0",
                             "--json", str(tmp_path / "fall.json")]) == 0
    out = capsys.readouterr().out
    assert "| gmt/squat | default | none | 0 | – |" in out and "recommended: fall_tilt_rad" in out
    saved = json.loads((tmp_path / "fall.json").read_text())
    assert saved["rows"][0]["fell"] is False and 0.0 < saved["rows"][0]["max_imu_tilt_rad"] < 0.5
