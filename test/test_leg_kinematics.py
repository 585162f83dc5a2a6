"""Leg forward kinematics and the left-right mirror, checked against MuJoCo on the Menagerie G1."""
import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.leg_kinematics import FOOT_BODIES, foot_positions, stance_slip
from gmt_ros.core.motion_matching import mirror_joints
from sim2sim.kinematics import KEY_BODIES, ReferenceKinematics


@pytest.fixture(scope="module")
def mujoco_feet():
    return ReferenceKinematics(body_names=FOOT_BODIES)


def test_feet_match_mujoco_for_random_poses(mujoco_feet):
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.uniform(g1.Q_MIN, g1.Q_MAX)
        pos = rng.normal(size=3)
        quat = rotations.normalize(rng.normal(size=4))
        expected = mujoco_feet.body_positions(pos, quat, q)
        np.testing.assert_allclose(foot_positions(pos, quat, q)[0], expected, atol=1e-6)


def test_batched_feet_equal_one_by_one():
    rng = np.random.default_rng(4)
    q = rng.uniform(g1.Q_MIN, g1.Q_MAX, size=(5, 29))
    pos = rng.normal(size=(5, 3))
    quat = rotations.normalize(rng.normal(size=(5, 4)))
    batch = foot_positions(pos, quat, q)
    for i in range(5):
        np.testing.assert_allclose(batch[i], foot_positions(pos[i], quat[i], q[i])[0], atol=1e-12)


def _mirror_name(name):
    for a, b in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(a):
            return b + name[len(a):]
    return name


def test_mirrored_pose_is_the_mirror_image_on_the_whole_body():
    """mirror_joints must give the pose whose every body (legs, waist, arms, wrists) is the
    original's left-right counterpart reflected in y: MuJoCo's kinematics on the model decides."""
    names = KEY_BODIES
    kin = ReferenceKinematics(body_names=names)
    rng = np.random.default_rng(5)
    for _ in range(10):
        q = rng.uniform(-0.5, 0.5, size=29) + g1.DEFAULT_POSE
        original = kin.body_positions(np.zeros(3), np.array([1.0, 0, 0, 0]), q)
        mirrored = kin.body_positions(np.zeros(3), np.array([1.0, 0, 0, 0]), mirror_joints(q))
        for i, name in enumerate(names):
            expected = original[names.index(_mirror_name(name))] * np.array([1.0, -1.0, 1.0])
            np.testing.assert_allclose(mirrored[i], expected, atol=1e-4, err_msg=name)


def test_standing_feet_are_planted_and_walking_clip_slip_is_measured():
    n = 50
    pos = np.tile([0.0, 0.0, 0.78], (n, 1))
    quat = np.tile([1.0, 0, 0, 0], (n, 1))
    q = np.tile(g1.DEFAULT_POSE, (n, 1))
    still = stance_slip(pos, quat, q, 0.02)
    assert still["contact_share"] == 1.0 and still["p95_mps"] == 0.0
    # the same standing pose dragged along at 0.3 m/s: both feet "planted" and sliding at 0.3
    pos[:, 0] = 0.3 * 0.02 * np.arange(n)
    dragged = stance_slip(pos, quat, q, 0.02)
    assert dragged["median_mps"] == pytest.approx(0.3, abs=1e-6)
