"""The motion-matching database and the locomotion planner, kinematically (no physics):
standing at zero command, the commanded velocities and heading reached by the reference, no
jumps at transitions or re-plans, blends that do not add foot slip, time handling."""
import math
import warnings

import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.clip_library import load_named_clip
from gmt_ros.core.leg_kinematics import foot_positions, stance_slip
from gmt_ros.core.locomotion_planner import LocomotionPlanner, PlannerSettings, commanded_trajectory, gait_velocity
from gmt_ros.core.motion_matching import STANDING, MotionDatabase, Query, mirror_clip
from gmt_ros.core.planner_config import DEFAULT_CLIPS, PARAMETERS, load_yaml, split
from gmt_ros.core.playback import STANDING_HEIGHT
from sim2sim.velocity_tracking import averaged_velocity

DT = 0.02


@pytest.fixture(scope="module")
def clips():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [load_named_clip(n) for n in DEFAULT_CLIPS]


@pytest.fixture(scope="module")
def db(clips):
    return MotionDatabase.build(clips, dt=DT)


def _run(db, command, seconds, settings=None, start=0.0):
    """Frame 0 of the window at every step; ``command(t)`` gives the target."""
    planner = LocomotionPlanner(db, settings)
    planner.reset(start)
    rows = []
    for k in range(int(round(seconds / DT))):
        t = start + k * DT
        w = planner.window(t, np.asarray(command(t), dtype=np.float64))
        assert w.start_time == pytest.approx(t)
        rows.append(w.frames.take(slice(0, 1)))
    frames = {name: np.concatenate([getattr(r, name) for r in rows]) for name in
              ("root_pos", "root_quat", "root_lin_vel", "root_ang_vel", "joint_pos", "joint_vel")}
    return planner, start + DT * np.arange(len(rows)), frames


def _mean_velocity(times, frames, t0, t1):
    centres, v = averaged_velocity(times, frames["root_pos"], frames["root_quat"])
    sel = (centres >= t0 + 0.5) & (centres <= t1 - 0.5)
    return v[sel].mean(axis=0)


# ---------------------------------------------------------------------------------- database

def test_database_contents(db, clips):
    assert db.clip_names.count(STANDING) == 1 and len(db.clip_names) == 2 * len(clips) + 1
    assert not db.searchable[db.standing]  # entered by the stop rule only
    assert db.next_of[db.standing] == db.standing
    # walk_006 squats to 0.42 m: those frames are not searchable
    c = db.clip_names.index("walk_006")
    frames = slice(db.start_of[c], db.start_of[c] + len(db.clips[c]))
    assert np.all(~db.searchable[frames][db.height[frames] < 0.70])
    assert 0.5 < db.searchable.mean() < 0.95


def test_steps_integrate_back_to_the_clip_path(db, clips):
    """Playing a clip's frames step by step from its first pose reproduces its root path."""
    clip = clips[0]
    c = db.clip_names.index(clip.name)
    first, n = db.start_of[c], len(db.clips[c])
    truth = clip.sample(np.arange(n) * DT)
    yaw0 = rotations.to_rpy(truth.root_quat[0])[2]
    x, y, yaw = truth.root_pos[0, 0], truth.root_pos[0, 1], yaw0
    for g in range(first, first + n - 1):
        dx, dy, dyaw = db.step[g]
        x, y, yaw = x + math.cos(yaw) * dx - math.sin(yaw) * dy, y + math.sin(yaw) * dx + math.cos(yaw) * dy, yaw + dyaw
    assert (x, y) == pytest.approx(tuple(truth.root_pos[-1, :2]), abs=1e-9)
    assert math.remainder(yaw - rotations.to_rpy(truth.root_quat[-1])[2], 2 * math.pi) == pytest.approx(0, abs=1e-9)


def test_mirror_flips_sideways_and_turning(db, clips):
    walk7 = db.clip_names.index("walk_007")
    mirrored = db.clip_names.index("walk_007~mirror")
    a = slice(db.start_of[walk7], db.start_of[walk7] + len(db.clips[walk7]))
    b = slice(db.start_of[mirrored], db.start_of[mirrored] + len(db.clips[mirrored]))
    np.testing.assert_allclose(db.mean_vel[b], db.mean_vel[a] * [1, -1, -1], atol=1e-9)
    np.testing.assert_allclose(db.height[b], db.height[a], atol=1e-12)
    m = mirror_clip(clips[-1])
    np.testing.assert_allclose(m.root_pos[:, 1], -clips[-1].root_pos[:, 1])


def test_search_finds_a_frame_from_its_own_features(db):
    g = int(np.flatnonzero(db.searchable)[1234])
    k = len(db.features[g][:6]) // 2
    query = Query(db.features[g][:6].reshape(k, 2), db.features[g][6:12].reshape(k, 2), db.pose_features(g))
    best, cost = db.best(query)
    assert best == g and cost == pytest.approx(0.0, abs=1e-18)
    other, _ = db.best(query, exclude=(g - 5, g + 5))
    assert not (g - 5 <= other <= g + 5)
    assert db.cost(query, db.standing) == math.inf


def test_commanded_trajectory_is_the_ramped_integral():
    pos, direction = commanded_trajectory(np.zeros(3), np.array([0.5, 0.0, 0.0]), np.array([1.0, 1.0, 2.0]), DT,
                                          offsets_s=(1.0,))
    # 0.5 s of ramp (0.125 m) then 0.5 s at 0.5 m/s, in 0.02 s steps
    assert pos[0, 0] == pytest.approx(0.125 - 0.5 * 0.02 * 0.5 + 0.25, abs=1e-9)
    pos, direction = commanded_trajectory(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]), np.ones(3), DT,
                                          offsets_s=(0.5,))
    assert direction[0] == pytest.approx([math.cos(0.5), math.sin(0.5)])


def test_gait_velocity_searches_slow_translations_at_a_walking_speed():
    np.testing.assert_allclose(gait_velocity(np.array([0.0, 0.2, 0.0]), 0.45, 0.4), [0.0, 0.45, 0.0])
    np.testing.assert_allclose(gait_velocity(np.array([0.03, 0.04, 0.3]), 0.45, 0.4), [0.27, 0.36, 0.3])
    np.testing.assert_allclose(gait_velocity(np.array([0.6, 0.0, 0.1]), 0.45, 0.4), [0.6, 0.0, 0.1])
    np.testing.assert_allclose(gait_velocity(np.array([0.0, 0.0, 0.6]), 0.45, 0.4), [0.0, 0.0, 0.6])


# ---------------------------------------------------------------------------------- planner

def test_zero_command_stands_still_at_the_default_pose(db):
    _, times, f = _run(db, lambda t: (0, 0, 0), 3.0)
    np.testing.assert_allclose(f["joint_pos"], np.tile(g1.DEFAULT_POSE, (len(times), 1)), atol=1e-12)
    np.testing.assert_allclose(f["root_pos"], np.tile([0, 0, STANDING_HEIGHT], (len(times), 1)), atol=1e-12)
    assert not np.any(f["root_lin_vel"]) and not np.any(f["root_ang_vel"]) and not np.any(f["joint_vel"])


@pytest.mark.parametrize("command,seconds", [((0.5, 0.0, 0.0), 8.0), ((0.0, 0.0, 0.6), 8.0), ((0.0, 0.2, 0.0), 8.0),
                                             ((-0.3, 0.0, 0.0), 6.0), ((0.6, 0.0, 0.4), 8.0)])
def test_reference_moves_at_the_command(db, command, seconds):
    planner, times, f = _run(db, lambda t: command, seconds)
    v = _mean_velocity(times, f, 2.0, seconds)
    assert np.linalg.norm(v[:2] - command[:2]) < 0.05, v
    assert abs(v[2] - command[2]) < 0.08, v
    assert planner.current["standing"] is False and planner.searches > 0


def test_heading_is_integrated(db):
    _, _times, f = _run(db, lambda t: (0.0, 0.0, 0.6), 10.0)
    yaw = np.unwrap(rotations.to_rpy(f["root_quat"])[:, 2])
    assert yaw[-1] - yaw[0] == pytest.approx(0.6 * (10.0 - 0.15), abs=0.6)  # ramp-up 0.3 s at 2 rad/s^2
    assert yaw[-1] - yaw[0] > 3.0  # past a half turn: nothing wraps or resets


def test_no_jumps_across_transitions_replans_and_stops(db):
    def script(t):
        return [(0.5, 0, 0), (0, 0, 0.6), (0, 0.2, 0), (0, 0, 0), (-0.3, 0, 0.3), (0.7, 0, -0.5)][int(t // 3) % 6]

    planner, _times, f = _run(db, script, 36.0)
    dq = np.abs(np.diff(f["joint_pos"], axis=0)).max()
    step = np.linalg.norm(np.diff(f["root_pos"][:, :2], axis=0), axis=1).max()
    dz = np.abs(np.diff(f["root_pos"][:, 2])).max()
    turn = np.abs(np.diff(np.unwrap(rotations.to_rpy(f["root_quat"])[:, 2]))).max()
    assert planner.switches > 20
    # no joint moves faster than the clips' own fastest step (rad per 20 ms, 0.28 in walk_006's arms)
    same_clip = db.clip_of[1:] == db.clip_of[:-1]
    clips_fastest = np.abs(np.diff(db.joint_pos, axis=0))[same_clip].max()
    assert dq <= 1.05 * clips_fastest, (dq, clips_fastest)
    # the root moves no faster than the clips' own steps plus the bounded warp
    settings = planner.settings
    clip_step = np.linalg.norm(db.step[:, :2], axis=1).max()
    clip_dz = np.abs(np.diff(db.height))[same_clip].max()
    assert step <= 1.05 * clip_step + math.sqrt(2) * settings.warp_max_speed * DT, (step, clip_step)
    assert dz <= 1.05 * clip_dz, (dz, clip_dz)
    assert turn <= 1.05 * np.abs(db.step[:, 2]).max() + settings.warp_max_yaw_rate * DT, turn
    assert np.all(np.isfinite(f["joint_vel"])) and np.all(np.isfinite(f["root_lin_vel"]))


def test_replan_keeps_the_present_frame(db):
    planner = LocomotionPlanner(db)
    planner.reset(0.0)
    for k in range(150):
        old = planner.window(k * DT, np.array([0.5, 0.0, 0.0]))
    new = planner.window(150 * DT, np.array([0.0, 0.0, 0.6]))
    old_next = old.sample(150 * DT)
    np.testing.assert_allclose(new.frames.joint_pos[0], old_next.joint_pos[0], atol=1e-9)
    np.testing.assert_allclose(new.frames.root_pos[0], old_next.root_pos[0], atol=1e-9)
    # a steady command does not re-plan: the window shifts by one frame
    again = planner.window(151 * DT, np.array([0.0, 0.0, 0.6]))
    np.testing.assert_allclose(again.frames.joint_pos[:-1], new.frames.joint_pos[1:], atol=1e-12)


def test_blends_add_no_foot_slip(db):
    """Without the root warp (bound 0), feet slip hardly more while two streams are cross-faded
    than while one plays (the clips' own retargeting slip is the baseline). Blending world-frame
    positions, or the root without the legs, would slide a planted foot by the stride."""
    settings = PlannerSettings(warp_max_speed=0.0, warp_max_yaw_rate=0.0)
    planner = LocomotionPlanner(db, settings)
    planner.reset(0.0)
    frames, blending = [], []
    for k in range(1200):
        t = k * DT
        w = planner.window(t, np.array([0.7, 0.0, 0.3 if (t // 4) % 2 else -0.3]))
        frames.append(w.frames.take(slice(0, 1)))
        blending.append(planner.current["blending"])
    assert planner.switches > 10
    pos, quat, q = (np.concatenate([getattr(f, n) for f in frames]) for n in ("root_pos", "root_quat", "joint_pos"))
    feet = foot_positions(pos, quat, q)
    lower = feet[..., 2].min(axis=1, keepdims=True)
    vz = np.abs(np.gradient(feet[..., 2], DT, axis=0))
    contact = (feet[..., 2] < lower + 0.01) & (vz < 0.1)
    speed = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1) / DT
    planted = contact[:-1] & contact[1:]
    blend = np.array(blending[:-1])[:, None] & planted
    single = ~np.array(blending[:-1])[:, None] & planted
    assert blend.sum() > 100 and single.sum() > 100
    # measured: medians 0.106 m/s blending, 0.077 playing one stream (the clips' own: 0.06-0.24)
    assert np.median(speed[blend]) <= np.median(speed[single]) + 0.04, (np.median(speed[blend]), np.median(speed[single]))
    assert stance_slip(pos, quat, q, DT)["median_mps"] < 0.25


def test_acceleration_limit_and_stop(db):
    planner = LocomotionPlanner(db)
    planner.reset(0.0)
    speeds = []
    for k in range(100):
        planner.window(k * DT, np.array([0.5, 0.0, 0.0]))
        speeds.append(planner.current["velocity"][0])
    np.testing.assert_allclose(speeds, np.minimum(0.02 * np.arange(100), 0.5), atol=1e-9)
    for k in range(100, 200):
        planner.window(k * DT, np.zeros(3))
    assert planner.current["standing"] and not planner.current["blending"]


def test_time_jumps_and_a_stalled_caller(db):
    planner = LocomotionPlanner(db)
    planner.reset(100.0)
    planner.window(100.0, np.array([0.5, 0.0, 0.0]))
    w = planner.window(105.0, np.array([0.5, 0.0, 0.0]))  # 5 s later: simulated on
    assert w.start_time == pytest.approx(105.0)
    w = planner.window(1000.0, np.array([0.5, 0.0, 0.0]))  # far later: restarts from the last state
    assert w.start_time == pytest.approx(1000.0, abs=DT) and np.all(np.isfinite(w.frames.root_pos))
    w2 = planner.window(999.0, np.array([0.5, 0.0, 0.0]))  # clock stepped back: the current frame
    assert w2.start_time == pytest.approx(w.start_time)
    with pytest.raises(ValueError, match="finite"):
        planner.window(math.nan, np.zeros(3))


def test_shipped_config_is_complete_and_valid():
    values = load_yaml()
    assert set(values) == set(PARAMETERS)
    clips, settings, _limits, _rest = split(values)
    assert clips == DEFAULT_CLIPS and settings.window_frames == 121
    with pytest.raises(ValueError, match="unknown planner parameters"):
        split({"max_speed": 1.0})
