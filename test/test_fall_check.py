"""gmt_ros.core.fall_check: the supervisor's fall check on single states."""
import math

import numpy as np
import pytest

from gmt_ros.core import g1
from gmt_ros.core.fall_check import FallCheck, pelvis_tilt
from gmt_ros.core.state import RobotState


def _state(quat=(1.0, 0.0, 0.0, 0.0), joint_vel=None):
    n = g1.NUM_BODY_JOINTS
    return RobotState(stamp=0.0, joint_pos=np.array(g1.DEFAULT_POSE, float), joint_vel=np.zeros(n) if joint_vel is None else joint_vel,
                      imu_quat=np.array(quat, float), imu_gyro=np.zeros(3))


def _about_y(angle):
    return (math.cos(angle / 2), 0.0, math.sin(angle / 2), 0.0)


def test_tilt_is_the_inclination_of_the_pelvis_z_axis():
    assert pelvis_tilt((1, 0, 0, 0)) == 0.0
    assert pelvis_tilt(_about_y(0.7)) == pytest.approx(0.7)
    assert pelvis_tilt((0.0, 0.0, 0.0, 1.0)) == pytest.approx(0.0)  # yaw is not tilt
    assert pelvis_tilt(2.0 * np.array(_about_y(0.3))) == pytest.approx(0.3)  # any norm
    assert math.isnan(pelvis_tilt((0, 0, 0, 0))) and math.isnan(pelvis_tilt((math.nan, 0, 0, 1)))


def test_each_cause_is_named_and_the_extremes_kept():
    heights = iter([0.70, 0.30])
    check = FallCheck(tilt_rad=0.9, height_m=0.35, height_estimate=lambda s: next(heights))
    assert check.reason(_state(_about_y(0.5))) is None
    assert check.reason(_state(_about_y(1.0))) == "fall detected: tilt 57 deg > 52 deg"
    assert check.reason(_state()) == "fall detected: pelvis height estimate 0.30 m < 0.35 m"
    assert check.max_tilt_rad == pytest.approx(1.0) and check.min_height_m == pytest.approx(0.30)
    fast = np.zeros(g1.NUM_BODY_JOINTS)
    fast[3] = 2.0 * g1.DQ_MAX[3]
    assert check.reason(_state(joint_vel=fast)).startswith(f"joint overspeed: {g1.JOINT_NAMES[3]}")
    assert check.reason(_state((0, 0, 0, 0))).startswith("IMU quaternion unusable")


def test_thresholds_can_be_switched_off_to_measure():
    check = FallCheck(tilt_rad=math.inf, height_m=-math.inf, height_estimate=lambda s: -0.2)
    assert check.reason(_state(_about_y(1.5))) is None
    assert check.max_tilt_rad == pytest.approx(1.5) and check.min_height_m == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="tilt_rad"):
        FallCheck(tilt_rad=0.0)
    with pytest.raises(ValueError, match="height_m"):
        FallCheck(height_m=math.nan)
