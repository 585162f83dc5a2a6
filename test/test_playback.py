"""The player's state machine on real shipped clips: blend-in from the robot's joints, playing the
clip frame for frame (re-anchored), queue / loop / stop / play_next, blend-out to standing, and
the standing height against the MuJoCo G1 model."""
import warnings

import mujoco
import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.clip_library import list_clips
from gmt_ros.core.motion import load_clip
from gmt_ros.core.playback import BLENDING_IN, BLENDING_OUT, IDLE, PLAYING, STANDING_HEIGHT, MotionPlayer, ease

T0 = 1000.0
DT = 0.02
# a robot pose different from both the default pose and any clip's first frame
ROBOT_Q = g1.DEFAULT_POSE + np.linspace(-0.15, 0.25, g1.NUM_BODY_JOINTS)


def _quiet_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip(path)


@pytest.fixture(scope="module")
def library():
    return list_clips()


@pytest.fixture
def player(library):
    return MotionPlayer(library, blend_in_s=1.0, blend_out_s=1.0, load=_quiet_load)


def _heading(q):
    return rotations.to_rpy(q)[..., 2]


def test_standing_height_is_the_g1_pelvis_height_at_the_default_pose():
    from sim2sim.g1_model import menagerie_g1_dir

    model = mujoco.MjModel.from_xml_path(str(menagerie_g1_dir() / "scene.xml"))
    data = mujoco.MjData(model)
    data.qpos[:7] = [0, 0, 1.0, 1, 0, 0, 0]
    for slot, name in enumerate(g1.JOINT_NAMES):
        data.qpos[model.joint(name).qposadr[0]] = g1.DEFAULT_POSE[slot]
    mujoco.mj_forward(model, data)
    soles = [i for i in range(model.ngeom)
             if model.body(model.geom_bodyid[i]).name in ("left_ankle_roll_link", "right_ankle_roll_link")
             and model.geom_type[i] == mujoco.mjtGeom.mjGEOM_SPHERE]
    assert len(soles) >= 4
    lowest = min(data.geom_xpos[i][2] - model.geom_size[i][0] for i in soles)
    pelvis_height = 1.0 - lowest  # pelvis was placed at 1.0 m
    assert STANDING_HEIGHT == pytest.approx(pelvis_height, abs=0.005)


def test_ease_is_quintic_smoothstep():
    s, ds = ease(np.array([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0]))
    np.testing.assert_allclose(s, [0, 0, 10 / 64 - 15 / 256 + 6 / 1024, 0.5, 1, 1])
    np.testing.assert_allclose(ds, [0, 0, 30 * 0.0625 * 0.5625, 1.875, 0, 0])


def test_idle_is_the_standing_reference(player):
    w = player.window(T0, n=10, dt=DT)
    assert player.state == IDLE and player.status(T0)["clip"] == ""
    assert w.joint_mask.all() and w.start_time == T0 and w.dt == DT
    np.testing.assert_allclose(w.frames.joint_pos, np.tile(g1.DEFAULT_POSE, (10, 1)))
    np.testing.assert_allclose(w.frames.root_pos[:, 2], STANDING_HEIGHT)
    np.testing.assert_allclose(w.frames.root_quat, np.tile([1.0, 0, 0, 0], (10, 1)))
    for name in ("root_lin_vel", "root_ang_vel", "joint_vel"):
        assert not getattr(w.frames, name).any()
    w.validate()


def test_blend_in_starts_at_the_robot_joints_and_reaches_the_clip(player):
    clip = player.clip("walk_stand")  # 23 joints: wrists masked out
    mask = clip.joint_mask
    player.observe_joints(ROBOT_Q)
    player.play("walk_stand", T0)
    w = player.window(T0, n=101, dt=DT)  # 2 s: 1 s blend, then 1 s of the clip
    assert player.status(T0) == {"state": BLENDING_IN, "clip": "gmt/walk_stand", "clip_time": 0.0,
                                 "clip_duration": round(clip.duration, 3), "loop": False, "queue": []}
    q = w.frames.joint_pos
    np.testing.assert_allclose(q[0, mask], ROBOT_Q[mask], atol=1e-12)
    assert not q[:, ~mask].any() and not w.joint_mask[~mask].any()
    np.testing.assert_allclose(q[25, mask], 0.5 * (ROBOT_Q[mask] + clip.joint_pos[0, mask]), atol=1e-9)  # ease(0.5) = 0.5
    np.testing.assert_allclose(q[50, mask], clip.joint_pos[0, mask], atol=1e-9)
    np.testing.assert_allclose(q[50:, mask], clip.sample(DT * np.arange(51)).joint_pos[:, mask], atol=1e-9)
    # each joint moves monotonically from the robot's angle to the clip's during the blend
    d = np.diff(q[:51, mask], axis=0) * np.sign(clip.joint_pos[0, mask] - ROBOT_Q[mask])
    assert np.all(d >= -1e-12)
    # blend velocities are the derivative of the blend positions, zero at both ends
    fd = (q[2:51] - q[:49]) / (2 * DT)
    np.testing.assert_allclose(w.frames.joint_vel[1:50], fd, atol=0.02)
    assert np.abs(w.frames.joint_vel[[0, 50]][:, mask] - np.array([[0.0] * mask.sum(), clip.joint_vel[0, mask]])).max() < 1e-9
    # the root does not travel during the blend; the height eases from standing to the clip's
    assert not w.frames.root_lin_vel[:50, :2].any()
    assert w.frames.root_pos[0, 2] == pytest.approx(STANDING_HEIGHT)
    assert w.frames.root_pos[50, 2] == pytest.approx(clip.root_pos[0, 2])

    assert player.status(T0 + 1.0)["state"] == PLAYING
    assert player.status(T0 + 4.0)["clip_time"] == pytest.approx(3.0)


def test_clip_is_played_frame_for_frame_anchored_at_the_reference(player):
    clip = player.clip("twist2/walk_002")
    player.play("twist2/walk_002", T0)  # robot joints unknown: blends from the current reference
    w0 = player.window(T0, n=2, dt=DT)
    np.testing.assert_allclose(w0.frames.joint_pos[0], g1.DEFAULT_POSE)  # idle reference
    start = T0 + 1.0
    w = player.window(start + 2.0, n=200, dt=DT)
    assert w.clip_name == "twist2/walk_002" and w.clip_time == pytest.approx(2.0)
    ref = clip.sample(2.0 + DT * np.arange(200))
    np.testing.assert_allclose(w.frames.joint_pos, ref.joint_pos, atol=1e-9)
    np.testing.assert_allclose(w.frames.joint_vel, ref.joint_vel, atol=1e-9)
    np.testing.assert_allclose(w.frames.root_pos[:, 2], ref.root_pos[:, 2], atol=1e-9)
    # anchoring is a rotation about z plus a shift: roll, pitch, speeds and path shape are kept
    np.testing.assert_allclose(rotations.to_rpy(w.frames.root_quat)[:, :2], rotations.to_rpy(ref.root_quat)[:, :2], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(w.frames.root_lin_vel, axis=1), np.linalg.norm(ref.root_lin_vel, axis=1), atol=1e-9)
    np.testing.assert_allclose(w.frames.root_ang_vel[:, 2], ref.root_ang_vel[:, 2], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(np.diff(w.frames.root_pos, axis=0), axis=1),
                               np.linalg.norm(np.diff(ref.root_pos, axis=0), axis=1), atol=1e-9)
    # ... placed so the clip's first frame has the idle reference's x, y (origin) and heading (0)
    first = player.window(start, n=2, dt=DT).frames
    np.testing.assert_allclose(first.root_pos[0, :2], [0.0, 0.0], atol=1e-9)
    assert _heading(first.root_quat[0]) == pytest.approx(0.0, abs=1e-9)
    dyaw = _heading(w.frames.root_quat[0]) - _heading(first.root_quat[0])
    dyaw_clip = _heading(ref.root_quat[0]) - _heading(clip.root_quat[0])
    assert np.angle(np.exp(1j * (dyaw - dyaw_clip))) == pytest.approx(0.0, abs=1e-9)


def test_end_of_clip_blends_out_to_standing_inside_one_window(player):
    clip = player.clip("gmt/squat")
    player.play("gmt/squat", T0)
    end = T0 + 1.0 + clip.duration
    w = player.window(end - 0.5, n=101, dt=DT)  # crosses the end: 0.5 s clip, 1 s blend-out, idle
    assert player.state == PLAYING
    assert len(w.frames) == 101
    last = clip.sample(clip.duration)
    np.testing.assert_allclose(w.frames.joint_pos[25, clip.joint_mask], last.joint_pos[0, clip.joint_mask], atol=1e-9)
    np.testing.assert_allclose(w.frames.joint_pos[75], g1.DEFAULT_POSE * clip.joint_mask, atol=1e-9)
    assert w.frames.root_pos[75, 2] == pytest.approx(STANDING_HEIGHT)
    assert np.abs(np.diff(w.frames.joint_pos, axis=0)).max() < 0.05  # continuous, no jump at the seams
    # standing keeps the heading the clip ended with, level
    rpy = rotations.to_rpy(w.frames.root_quat[80])
    assert rpy[0] == pytest.approx(0.0, abs=1e-9) and rpy[1] == pytest.approx(0.0, abs=1e-9)
    assert rpy[2] == pytest.approx(_heading(w.frames.root_quat[25]), abs=0.05)
    assert player.status(end + 0.5)["state"] == BLENDING_OUT
    assert player.status(end + 1.0)["state"] == IDLE
    np.testing.assert_allclose(player.window(end + 3.0, n=2).frames.joint_pos[0], g1.DEFAULT_POSE)


def test_queue_plays_clips_in_order_with_a_blend_between(player):
    a, b = player.clip("gmt/squat"), player.clip("twist2/walk_001")
    player.queue("gmt/squat", T0)  # idle: starts at once
    assert player.status(T0)["state"] == BLENDING_IN and player.status(T0)["clip"] == "gmt/squat"
    player.queue("walk_001", T0 + 0.1)
    assert player.status(T0 + 0.2)["queue"] == ["twist2/walk_001"]
    a_end = T0 + 1.0 + a.duration
    assert player.window(a_end - 0.5, n=2).joint_mask.sum() == 23  # inside the 23-joint clip
    s = player.status(a_end + 0.5)
    assert (s["state"], s["clip"], s["queue"]) == (BLENDING_IN, "twist2/walk_001", [])
    # blending into a 29-joint clip supplies all 29 joints (the wrists ease from 0 to the clip's)
    assert player.window(a_end + 0.5, n=2).joint_mask.all()
    s = player.status(a_end + 1.0 + 2.0)
    assert (s["state"], s["clip"], s["clip_time"]) == (PLAYING, "twist2/walk_001", pytest.approx(2.0))
    assert player.status(a_end + 1.0 + b.duration + 1.0)["state"] == IDLE


def test_blend_between_queued_clips_is_continuous(player):
    a = player.clip("gmt/squat")
    player.play("gmt/squat", T0)
    player.queue("twist2/walk_001", T0)
    a_end = T0 + 1.0 + a.duration
    w = player.window(a_end - 0.2, n=80, dt=DT)  # last 0.2 s of squat, the 1 s blend, walk_001
    assert np.abs(np.diff(w.frames.joint_pos[:, w.joint_mask], axis=0)).max() < 0.05
    np.testing.assert_allclose(w.frames.root_pos[10, :2], w.frames.root_pos[60, :2], atol=1e-9)  # re-anchored in place


def test_loop_repeats_and_walks_on(player):
    clip = player.clip("twist2/walk_002")
    player.loop_clip("twist2/walk_002", T0)
    rep1_start = T0 + 1.0
    rep1_end = rep1_start + clip.duration
    end_pos = player.window(rep1_end - 0.01, n=2, dt=0.01).frames.root_pos[1]
    s = player.status(rep1_end + 0.5)
    assert (s["state"], s["clip"], s["loop"]) == (BLENDING_IN, "twist2/walk_002", True)
    rep2 = player.window(rep1_end + 1.0, n=2).frames
    # the second repetition starts where the first ended, not back at the origin
    np.testing.assert_allclose(rep2.root_pos[0, :2], end_pos[:2], atol=1e-9)
    np.testing.assert_allclose(rep2.joint_pos[0], clip.joint_pos[0], atol=1e-9)
    assert player.status(rep1_end + 1.0 + 1.0)["state"] == PLAYING
    player.set_loop(False)
    rep2_end = rep1_end + 1.0 + clip.duration
    assert player.status(rep2_end + 0.1)["state"] == BLENDING_OUT


def test_stop_blends_out_from_wherever_the_reference_is(player):
    clip = player.clip("twist2/walk_001")
    player.loop_clip("twist2/walk_001", T0)
    player.queue("gmt/squat", T0)
    t_stop = T0 + 1.0 + 3.0
    before = player.window(t_stop, n=2).frames
    player.observe_joints(ROBOT_Q)  # stop blends from the reference, not from the robot
    player.stop(t_stop)
    s = player.status(t_stop)
    assert (s["state"], s["queue"], s["loop"]) == (BLENDING_OUT, [], False)
    w = player.window(t_stop, n=60, dt=DT)
    np.testing.assert_allclose(w.frames.joint_pos[0], before.joint_pos[0], atol=1e-9)
    np.testing.assert_allclose(w.frames.joint_pos[50], g1.DEFAULT_POSE, atol=1e-9)
    np.testing.assert_allclose(w.frames.root_pos[50, :2], before.root_pos[0, :2], atol=1e-9)
    assert player.status(t_stop + 1.0)["state"] == IDLE
    player.stop(t_stop + 2.0)  # stopping while idle changes nothing
    assert player.status(t_stop + 2.0)["state"] == IDLE
    assert clip.duration > 4.0


def test_play_next_skips_to_the_queue_and_refuses_an_empty_one(player):
    player.play("gmt/squat", T0)
    with pytest.raises(ValueError, match="queue is empty"):
        player.play_next(T0 + 0.5)
    player.queue("twist2/walk_001", T0 + 0.5)
    player.observe_joints(ROBOT_Q)
    assert player.play_next(T0 + 2.0) == "twist2/walk_001"
    s = player.status(T0 + 2.0)
    assert (s["state"], s["clip"], s["queue"]) == (BLENDING_IN, "twist2/walk_001", [])
    np.testing.assert_allclose(player.window(T0 + 2.0, n=2).frames.joint_pos[0], ROBOT_Q, atol=1e-12)


def test_unknown_or_ambiguous_names_change_nothing(player, library):
    player.play("gmt/squat", T0)
    player.queue("twist2/walk_001", T0)
    before = player.status(T0 + 0.3)
    for command in (player.play, player.queue, player.loop_clip):
        with pytest.raises(ValueError, match=r"unknown clip 'walk_stnad'; did you mean .*gmt/walk_stand"):
            command("walk_stnad", T0 + 0.3)
    assert player.status(T0 + 0.3) == before
    twin = MotionPlayer({"a/walk": library["gmt/squat"], "b/walk": library["gmt/squat"]})
    with pytest.raises(ValueError, match="ambiguous: a/walk, b/walk"):
        twin.play("walk", T0)
    assert twin.state == IDLE


def test_bad_settings_and_inputs_are_refused(library):
    with pytest.raises(ValueError, match="blend_in_s must be positive"):
        MotionPlayer(library, blend_in_s=0.0)
    with pytest.raises(ValueError, match="default_pose must be 29"):
        MotionPlayer(library, default_pose=np.zeros(23))
    p = MotionPlayer(library)
    with pytest.raises(ValueError, match="29 finite joint positions"):
        p.observe_joints(np.full(29, np.nan))
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        p.window(T0, n=1)


def test_settle_to_standing_eases_from_the_frame_to_standing_below_it_then_stands():
    from gmt_ros.core.frames import MotionFrames
    from gmt_ros.core.playback import STANDING_HEIGHT, settle_to_standing

    q = rotations.from_rpy(np.array([0.3, -0.2, 1.0]))  # leaning, heading 1 rad
    pose = g1.DEFAULT_POSE + 0.4
    source = MotionFrames(root_pos=np.array([[1.0, 2.0, 0.6]]), root_quat=q[None], root_lin_vel=np.array([[0.5, 0, 0]]),
                          root_ang_vel=np.zeros((1, 3)), joint_pos=pose[None], joint_vel=np.zeros((1, 29)))
    w = settle_to_standing(source, start=10.0, duration=1.0, n=80, dt=0.02)
    f = w.frames
    assert w.start_time == 10.0 and len(f) == 80 and w.joint_mask.all()
    np.testing.assert_allclose(f.joint_pos[0], pose)  # starts exactly at the source: no jump
    np.testing.assert_allclose(f.root_pos[0], [1.0, 2.0, 0.6])
    end = w.sample(11.5)
    np.testing.assert_allclose(end.joint_pos[0], g1.DEFAULT_POSE, atol=1e-12)
    np.testing.assert_allclose(end.root_pos[0], [1.0, 2.0, STANDING_HEIGHT])  # below the source
    roll, pitch, yaw = rotations.to_rpy(end.root_quat[0])
    assert abs(roll) < 1e-9 and abs(pitch) < 1e-9 and yaw == pytest.approx(1.0)  # level, same heading
    assert np.abs(f.joint_vel[0]).max() < 1e-9 and np.abs(end.joint_vel).max() == 0.0  # eased at both ends
    assert np.abs(f.joint_vel[25]).max() > 0.4  # moving in the middle


def test_ease_to_standing_goes_to_the_given_pose_not_a_generic_one():
    """The policy node's stale-window ease ends in its contract's pose (held joints at their
    targets): a contract whose standing pose is not g1.DEFAULT_POSE stands in its own."""
    from gmt_ros.core.frames import MotionFrames, MotionWindow
    from gmt_ros.core.playback import ease_to_standing

    n = 30
    walk = g1.DEFAULT_POSE + 0.2
    mask = np.ones(29, bool)
    mask[list(g1.WRIST_SLOTS)] = False  # a 23-joint clip: wrists not supplied
    frames = MotionFrames(root_pos=np.tile([0.0, 0.0, 0.75], (n, 1)), root_quat=np.tile([1.0, 0, 0, 0], (n, 1)),
                          root_lin_vel=np.zeros((n, 3)), root_ang_vel=np.zeros((n, 3)),
                          joint_pos=np.tile(walk, (n, 1)), joint_vel=np.zeros((n, 29)))
    window = MotionWindow(start_time=5.0, dt=0.02, frames=frames, joint_mask=mask)
    pose = g1.DEFAULT_POSE.copy()
    pose[list(g1.WRIST_SLOTS)] = 0.5  # e.g. wrists held at 0.5 rad by the contract
    pose[[15, 22]] = -0.3             # shoulders pitched forward
    w = ease_to_standing(window, now=5.1, blend_s=1.0, horizon_s=2.0, dt=0.02, pose=pose)
    assert w.start_time == 5.1 and w.end_time >= 5.1 + 3.0 - 1e-9
    first = w.sample(5.1).joint_pos[0]
    np.testing.assert_allclose(first[mask], walk[mask])  # from the reference where it had one
    np.testing.assert_allclose(first[~mask], pose[~mask])  # from the pose where it had none
    np.testing.assert_allclose(w.sample(6.5).joint_pos[0], pose, atol=1e-12)
    assert np.abs(w.sample(6.5).joint_pos[0] - g1.DEFAULT_POSE).max() > 0.4
