"""G1Sim and ReferenceKinematics on the real Menagerie G1 in MuJoCo."""
import mujoco
import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from sim2sim.g1_model import build_g1_model, foot_sphere_geoms
from sim2sim.kinematics import KEY_BODIES, ReferenceKinematics
from sim2sim.simulator import G1Sim

DT = 0.001
# Hold gains: kp 200 / kd 5 on the legs (known to hold the default pose), the GMT gains elsewhere.
HOLD_KP = np.array([200.0] * 12 + [150.0] * 3 + [40.0] * 14)
HOLD_KD = np.array([5.0] * 12 + [4.0] * 3 + [5.0] * 14)


@pytest.fixture(scope="module")
def model():
    return build_g1_model(DT)


@pytest.fixture
def sim(model):
    return G1Sim(model, physics_dt=DT, seed=0)


def hold_command(q=g1.DEFAULT_POSE):
    n = g1.NUM_BODY_JOINTS
    return JointCommand(q=np.array(q, float), dq=np.zeros(n), kp=HOLD_KP.copy(), kd=HOLD_KD.copy(),
                        tau=np.zeros(n), enabled=np.ones(n, bool))


def reference_frame(seed=3):
    """A reference frame away from every default: airborne, turned, moving, joints mid-range."""
    rng = np.random.default_rng(seed)
    return dict(
        root_pos=np.array([0.3, -0.2, 1.9]),
        root_quat=rotations.from_rpy(np.array([0.2, -0.1, 0.8])),
        joint_pos=g1.Q_MIN + (g1.Q_MAX - g1.Q_MIN) * rng.uniform(0.3, 0.7, g1.NUM_BODY_JOINTS),
        root_lin_vel=np.array([0.5, -0.3, 0.2]),
        root_ang_vel=np.array([0.4, -0.7, 1.1]),
        joint_vel=rng.uniform(-1.0, 1.0, g1.NUM_BODY_JOINTS),
    )


def lowest_sole_point(sim):
    feet = foot_sphere_geoms(sim.model)
    return float(np.min(sim.data.geom_xpos[feet, 2] - sim.model.geom_size[feet, 0]))


# -- reset --------------------------------------------------------------------------------------

def test_default_reset_stands_on_the_floor_in_default_pose(sim):
    s = sim.state()
    np.testing.assert_array_equal(s.joint_pos, g1.DEFAULT_POSE)
    np.testing.assert_array_equal(s.joint_vel, 0.0)
    np.testing.assert_array_equal(s.imu_quat, [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(s.joint_tau, 0.0)
    assert sim.time == 0.0 and s.stamp == 0.0
    assert abs(lowest_sole_point(sim)) < 1e-12
    # MuJoCo's own collision agrees: the closest sole-floor contact has zero distance.
    dists = [sim.data.contact[i].dist for i in range(sim.data.ncon)]
    assert dists and abs(min(dists)) < 1e-9 and min(dists) > -1e-9
    pos, _quat = sim.root_pose()
    assert pos[0] == 0.0 and pos[1] == 0.0 and 0.70 < pos[2] < 0.80  # bent knees: below Menagerie's 0.79


def test_reset_from_reference_frame_is_exact(sim):
    ref = reference_frame()
    sim.step(20)
    sim.reset(**ref)
    pos, quat = sim.root_pose()
    np.testing.assert_array_equal(pos, ref["root_pos"])
    np.testing.assert_allclose(quat, ref["root_quat"], rtol=0, atol=1e-15)
    s = sim.state()
    np.testing.assert_array_equal(s.joint_pos, ref["joint_pos"])
    np.testing.assert_array_equal(s.joint_vel, ref["joint_vel"])
    lin, ang = sim.root_velocity()
    np.testing.assert_allclose(lin, ref["root_lin_vel"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ang, ref["root_ang_vel"], rtol=0, atol=1e-14)
    assert sim.time == 0.0
    np.testing.assert_array_equal(sim.applied_torque(), 0.0)
    np.testing.assert_array_equal(sim.command.kp, 0.0)  # back to zero torque


def test_reset_without_root_pos_puts_any_pose_on_the_floor(sim):
    crouch = g1.DEFAULT_POSE.copy()
    crouch[[0, 6]], crouch[[3, 9]], crouch[[4, 10]] = -0.8, 1.6, -0.8
    sim.reset(joint_pos=crouch)
    assert abs(lowest_sole_point(sim)) < 1e-12
    assert sim.root_pose()[0][2] < 0.70


@pytest.mark.parametrize("kwargs, message", [
    (dict(joint_pos=np.zeros(23)), r"joint_pos has shape \(23,\), expected \(29,\)"),
    (dict(root_quat=[1.0, 0.0, 0.0, 0.1]), "root_quat must be a unit quaternion"),
    (dict(root_pos=[0.0, np.nan, 1.0]), "root_pos contains NaN"),
    (dict(joint_vel=np.full(29, np.inf)), "joint_vel contains NaN or inf"),
])
def test_bad_reset_input_is_named(sim, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sim.reset(**kwargs)


# -- commands and the motor PD ------------------------------------------------------------------

def test_pd_torque_matches_hand_computation(sim):
    rng = np.random.default_rng(7)
    sim.reset(**reference_frame())  # airborne: no contacts, joints moving
    n = g1.NUM_BODY_JOINTS
    cmd = JointCommand(
        q=g1.Q_MIN + (g1.Q_MAX - g1.Q_MIN) * rng.uniform(0.2, 0.8, n),
        dq=rng.uniform(-2, 2, n), kp=rng.uniform(0, 60, n), kd=rng.uniform(0, 3, n),
        tau=rng.uniform(-2, 2, n), enabled=np.ones(n, bool))
    cmd.kp[3] = 1e5  # left knee: the clip must engage
    cmd.kp[7], cmd.tau[7] = 80.0, 5.0  # right hip roll: disabled below, so 0 despite gains
    cmd.enabled[7] = False
    sim.set_command(cmd)
    dofs = np.array([sim.model.jnt_dofadr[mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_JOINT, nm)]
                     for nm in g1.JOINT_NAMES])
    for _ in range(5):
        before = sim.state()
        sim.step(1)
        raw = cmd.kp * (cmd.q - before.joint_pos) + cmd.kd * (cmd.dq - before.joint_vel) + cmd.tau
        expected = np.clip(raw, -g1.TAU_MAX, g1.TAU_MAX)
        expected[7] = 0.0
        applied = sim.applied_torque()
        np.testing.assert_allclose(applied, expected, rtol=1e-12, atol=1e-12)
        assert abs(raw[3]) > g1.TAU_MAX[3] and applied[3] == np.sign(raw[3]) * g1.TAU_MAX[3]
        assert applied[7] == 0.0
        np.testing.assert_array_equal(sim.state().joint_tau, applied)
        # MuJoCo applied exactly that torque on each joint's dof.
        np.testing.assert_allclose(sim.data.actuator_force, applied, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sim.data.qfrc_actuator[dofs], applied, rtol=1e-12, atol=1e-12)


def test_start_is_zero_torque(sim):
    sim.step(3)
    np.testing.assert_array_equal(sim.applied_torque(), 0.0)
    np.testing.assert_array_equal(sim.data.qfrc_actuator, 0.0)


def test_bad_command_rejected_and_previous_kept(sim):
    good = hold_command()
    sim.set_command(good)
    bad = hold_command()
    bad.q[18] = np.nan
    with pytest.raises(ValueError, match=r"JointCommand.q is not finite at left_elbow_joint"):
        sim.set_command(bad)
    with pytest.raises(TypeError, match="expected a JointCommand"):
        sim.set_command(good.q)
    np.testing.assert_array_equal(sim.command.q, good.q)
    # The stored command is a copy: editing the caller's object afterwards changes nothing.
    good.kp[:] = 0.0
    assert np.all(sim.command.kp > 0)


@pytest.mark.parametrize("n", [-1, 1.5, True])
def test_bad_step_count(sim, n):
    with pytest.raises(ValueError, match="non-negative integer"):
        sim.step(n)


def test_model_timestep_must_match(model):
    with pytest.raises(ValueError, match="differs from physics_dt"):
        G1Sim(model, physics_dt=0.002)


# -- physics sanity -----------------------------------------------------------------------------

def test_zero_torque_falls(sim):
    for _ in range(20):
        sim.step(100)
        if sim.root_pose()[0][2] < 0.5:
            break
    assert sim.root_pose()[0][2] < 0.5, "a limp robot must fall within 2 s"
    assert sim.time <= 2.0 + 1e-9


def test_holding_default_pose_stays_upright(sim):
    sim.set_command(hold_command())
    sim.step(2000)
    pos, quat = sim.root_pose()
    roll, pitch, _ = rotations.to_rpy(quat)
    assert pos[2] > 0.70 and abs(roll) < 0.1 and abs(pitch) < 0.1
    assert np.max(np.abs(sim.state().joint_pos[:12] - g1.DEFAULT_POSE[:12])) < 0.05
    assert abs(sim.time - 2.0) < 1e-9
    # Standing still, the accelerometer reads gravity's reaction, +9.81 m/s² up, in the pelvis frame.
    np.testing.assert_allclose(sim.state().imu_acc, rotations.rotate_inverse(quat, [0, 0, 9.81]), atol=0.05)


def test_determinism_same_seed_same_bytes(model):
    def run(q_offset):
        sim = G1Sim(model, physics_dt=DT, seed=11)
        sim.set_command(hold_command(g1.DEFAULT_POSE + q_offset))
        sim.step(250)
        sim.set_command(hold_command(g1.DEFAULT_POSE))
        sim.step(250)
        return sim.data.qpos.tobytes() + sim.data.qvel.tobytes(), sim.rng.random(4)

    a, rng_a = run(0.05)
    b, rng_b = run(0.05)
    c, _ = run(0.06)
    assert a == b
    np.testing.assert_array_equal(rng_a, rng_b)
    assert a != c  # the comparison can see a difference


# -- IMU ----------------------------------------------------------------------------------------

def test_imu_quat_and_gyro_in_motion(sim):
    sim.reset(**reference_frame())
    pelvis = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_BODY, "pelvis")
    for _ in range(10):
        q_before = sim.state().imu_quat
        sim.step(1)
        s = sim.state()
        # Orientation: the free joint's quaternion, as the kinematics see the pelvis.
        np.testing.assert_allclose(s.imu_quat, sim.root_pose()[1], rtol=0, atol=0)
        np.testing.assert_allclose(s.imu_quat, sim.data.xquat[pelvis], rtol=0, atol=1e-12)
        # Gyro: the world angular velocity expressed in the pelvis frame ...
        _, ang_world = sim.root_velocity()
        np.testing.assert_allclose(s.imu_gyro, rotations.rotate_inverse(s.imu_quat, ang_world), atol=1e-9)
        # ... and it is the rate that turned the pelvis over this step (current, not one step stale).
        turned = rotations.angular_velocity(q_before, s.imu_quat, DT, frame="body")
        np.testing.assert_allclose(s.imu_gyro, turned, rtol=1e-4, atol=1e-6)
    assert np.linalg.norm(s.imu_gyro) > 0.5  # it really was moving


def test_accelerometer_reads_zero_in_free_fall(sim):
    sim.reset(root_pos=[0.0, 0.0, 3.0])
    sim.step(20)
    assert sim.root_velocity()[0][2] < -0.15  # falling
    np.testing.assert_allclose(sim.state().imu_acc, 0.0, atol=1e-6)


def test_time_and_stamp(sim):
    sim.step(37)
    s = sim.state()
    assert abs(sim.time - 0.037) < 1e-12 and s.stamp == sim.time and s.tick == 37
    s.validate()


# -- reference kinematics -----------------------------------------------------------------------

def test_reference_kinematics_matches_the_sim_after_reset(model, sim):
    kin = ReferenceKinematics(model)
    ref = reference_frame(5)
    sim.reset(**ref)
    np.testing.assert_allclose(kin.body_positions(ref["root_pos"], ref["root_quat"], ref["joint_pos"]),
                               sim.body_positions(KEY_BODIES), rtol=0, atol=1e-12)


def test_reference_kinematics_hand_computed_torso(model):
    # Menagerie: waist_yaw_link sits at the pelvis origin (joint axis z), torso_link at
    # (-0.0039635, 0, 0.044) from it (waist roll and pitch joints at that point).
    kin = ReferenceKinematics(model, body_names=("pelvis", "torso_link"))
    root_pos = np.array([1.0, 2.0, 0.8])
    root_quat = rotations.from_rpy(np.array([0.1, 0.2, 0.3]))
    yaw = 0.5
    joints = np.zeros(29)
    joints[g1.SLOT_OF["waist_yaw_joint"]] = yaw
    joints[g1.SLOT_OF["waist_pitch_joint"]] = 0.3  # rotates about the torso origin: does not move it
    out = kin.body_positions(root_pos, root_quat, joints)
    offset = np.array([-0.0039635, 0.0, 0.044])
    waist_yaw = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])
    expected = root_pos + rotations.rotate(rotations.multiply(root_quat, waist_yaw), offset)
    np.testing.assert_allclose(out[0], root_pos, atol=1e-12)
    np.testing.assert_allclose(out[1], expected, atol=1e-9)


def test_reference_kinematics_batches_and_turns_with_the_root(model):
    kin = ReferenceKinematics(model)
    turn = np.array([np.cos(0.6), 0, 0, np.sin(0.6)])  # 1.2 rad about world z
    pos = np.array([[0.0, 0.0, 0.8], [0.0, 0.0, 0.8]])
    quat = np.array([[1.0, 0, 0, 0], turn])
    joints = np.stack([g1.DEFAULT_POSE, g1.DEFAULT_POSE])
    out = kin.body_positions(pos, quat, joints)
    assert out.shape == (2, len(KEY_BODIES), 3)
    np.testing.assert_allclose(out[1] - pos[1], rotations.rotate(turn, out[0] - pos[0]), atol=1e-12)
    # Default pose, upright: the robot is left/right mirror-symmetric (to Menagerie's 1e-5 m).
    names = list(KEY_BODIES)
    for i, name in enumerate(names):
        if name.startswith("left_"):
            j = names.index("right_" + name[len("left_"):])
            np.testing.assert_allclose(out[0, i] * [1, -1, 1], out[0, j], atol=1e-4)


def test_reference_kinematics_errors(model):
    with pytest.raises(ValueError, match="no body named 'left_hand_link'"):
        ReferenceKinematics(model, body_names=("torso_link", "left_hand_link"))
    kin = ReferenceKinematics(model)
    with pytest.raises(ValueError, match="root_quat is not unit length"):
        kin.body_positions([0, 0, 1], [0.9, 0, 0, 0], g1.DEFAULT_POSE)
    with pytest.raises(ValueError, match=r"joint_pos has shape \(23,\), expected \(29,\)"):
        kin.body_positions([0, 0, 1], [1, 0, 0, 0], np.zeros(23))
