"""The pelvis-height estimate (numpy leg table in the core) against MuJoCo's kinematics of the
Menagerie G1 the simulator runs, and against the simulator's true height."""
import mujoco
import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.height_estimate import SOLE_RADIUS, PelvisHeightEstimator
from gmt_ros.core.state import RobotState
from sim2sim.g1_model import build_g1_model, foot_sphere_geoms, g1_index
from sim2sim.simulator import G1Sim


@pytest.fixture(scope="module")
def sim_and_estimator():
    sim = G1Sim(seed=0)
    return sim, PelvisHeightEstimator()


def _state(quat, q) -> RobotState:
    n = g1.NUM_BODY_JOINTS
    return RobotState(stamp=0.0, joint_pos=q, joint_vel=np.zeros(n), imu_quat=quat, imu_gyro=np.zeros(3))


def test_sole_points_match_mujoco_kinematics_of_the_model_over_random_poses():
    """The table (offsets, body rotations, axes, sole spheres) is the model's: every sole sphere
    centre agrees with mj_kinematics to 1e-9 m for random joint angles and orientations."""
    model = build_g1_model()
    data = mujoco.MjData(model)
    idx = g1_index(model)
    soles = foot_sphere_geoms(model)
    assert np.allclose(model.geom_size[soles, 0], SOLE_RADIUS)
    est = PelvisHeightEstimator()
    rng = np.random.default_rng(3)
    for _ in range(50):
        q = rng.uniform(g1.Q_MIN, g1.Q_MAX)
        quat = rotations.from_rpy(rng.uniform(-np.pi, np.pi, 3))
        data.qpos[idx.root_qpos:idx.root_qpos + 3] = 0.0
        data.qpos[idx.root_qpos + 3:idx.root_qpos + 7] = quat
        data.qpos[idx.joint_qpos] = q
        mujoco.mj_kinematics(model, data)
        expected = data.geom_xpos[soles]  # left foot's four, then the right foot's
        got = est.sole_points(quat, q).reshape(-1, 3)
        np.testing.assert_allclose(got, expected, atol=1e-9)
        lowest = np.min(expected[:, 2] - SOLE_RADIUS)
        assert est(_state(quat, q)) == pytest.approx(-lowest, abs=1e-9)


def test_standing_default_pose_matches_true_height(sim_and_estimator):
    sim, est = sim_and_estimator
    sim.reset()
    assert est(sim.state()) == pytest.approx(sim.root_pose()[0][2], abs=1e-6)


def test_squatting_pose_reads_lower(sim_and_estimator):
    sim, est = sim_and_estimator
    q = g1.DEFAULT_POSE.copy()
    q[[0, 6]] = -1.0   # hip pitch
    q[[3, 9]] = 2.0    # knee
    q[[4, 10]] = -0.8  # ankle pitch
    sim.reset(joint_pos=q)  # placed with the lowest sole point on the floor
    h = sim.root_pose()[0][2]
    assert h < 0.6
    assert est(sim.state()) == pytest.approx(h, abs=1e-6)


def test_lying_robot_reads_near_the_floor(sim_and_estimator):
    sim, est = sim_and_estimator
    sim.reset(root_quat=rotations.from_rpy(np.array([0.0, 1.5, 0.0])))
    assert est(sim.state()) < 0.3
