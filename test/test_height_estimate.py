"""The pelvis-height estimate from IMU + joints agrees with the simulator's true height."""
import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.height_estimate import PelvisHeightEstimator
from sim2sim.simulator import G1Sim


@pytest.fixture(scope="module")
def sim_and_estimator():
    sim = G1Sim(seed=0)
    return sim, PelvisHeightEstimator(sim.model)


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
