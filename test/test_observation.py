"""Observation builders against independent hand computations.

The expected vectors are written from the published facts (assets README / the authors' deployment
code) with plain numpy: elementary rotation matrices, Euler angles chosen up front, literal joint
indices and scales. Nothing here calls the project's term functions or rotation helpers.
"""
import numpy as np
import pytest

from gmt_ros.core.contract import load_contract
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.observation import TERMS, ObservationBuilder
from gmt_ros.core.state import RobotState

DEFAULT_29 = np.array(
    [-0.2, 0, 0, 0.4, -0.2, 0] * 2 + [0, 0, 0] + [0, 0.4, 0, 1.2, 0, 0, 0] + [0, -0.4, 0, 1.2, 0, 0, 0], dtype=float
)
GMT_IDX = list(range(19)) + [22, 23, 24, 25]  # legs, waist, shoulders+elbows; no wrists
ANKLES = [4, 5, 10, 11]

WINDOW_START = 100.0  # the consumer's clock
WINDOW_DT = 0.01  # the window runs at 100 Hz, the policy at 50 Hz
N_FRAMES = 260


# --- independent rotation arithmetic ---------------------------------------------------------------


def rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def hamilton(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                     w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def quat_zyx(roll, pitch, yaw):
    """w,x,y,z of Rz(yaw) Ry(pitch) Rx(roll), as a product of axis rotations."""
    qx = np.array([np.cos(roll / 2), np.sin(roll / 2), 0, 0])
    qy = np.array([np.cos(pitch / 2), 0, np.sin(pitch / 2), 0])
    qz = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])
    return hamilton(qz, hamilton(qy, qx))


def matrix_zyx(roll, pitch, yaw):
    return rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)


# --- a reference motion given by closed-form functions of time ---------------------------------------


def ref_rpy(t):
    return np.array([0.15 * np.sin(2 * t), -0.1 + 0.2 * np.cos(t), 0.5 + 0.8 * t])


def ref_pos(t):
    return np.array([0.3 * t, -0.1 * t, 0.72 + 0.05 * np.sin(3 * t)])


def ref_lin_vel(t):
    return np.array([0.6 + 0.2 * np.sin(t), -0.3 * np.cos(2 * t), 0.05 * np.sin(5 * t)])


def ref_ang_vel(t):
    return np.array([0.2 * np.cos(t), -0.1 * np.sin(3 * t), 0.7 + 0.1 * t])


def ref_joints(t):
    return DEFAULT_29 + 0.3 * np.sin(t + 0.2 * np.arange(29))


def make_window():
    t = np.arange(N_FRAMES) * WINDOW_DT  # motion time of each frame
    frames = MotionFrames(
        root_pos=np.array([ref_pos(x) for x in t]),
        root_quat=np.array([quat_zyx(*ref_rpy(x)) for x in t]),
        root_lin_vel=np.array([ref_lin_vel(x) for x in t]),
        root_ang_vel=np.array([ref_ang_vel(x) for x in t]),
        joint_pos=np.array([ref_joints(x) for x in t]),
        joint_vel=np.zeros((N_FRAMES, 29)),
    )
    return MotionWindow(start_time=WINDOW_START, dt=WINDOW_DT, frames=frames, joint_mask=np.ones(29, bool))


def expected_ref_frame(clock_time):
    """Reference quantities at a clock time, from the closed forms (motion time = clock - start)."""
    t = clock_time - WINDOW_START
    roll, pitch, yaw = ref_rpy(t)
    r = matrix_zyx(roll, pitch, yaw)
    v_root = r.T @ ref_lin_vel(t)  # world vector expressed in the root frame
    w_root = r.T @ ref_ang_vel(t)
    return dict(height=ref_pos(t)[2], roll=roll, pitch=pitch, v=v_root, yaw_rate=w_root[2], q=ref_joints(t))


# --- robot states ------------------------------------------------------------------------------------

IMU_RPY = [(0.05, -0.08, 1.2), (-0.03, 0.12, -0.4), (0.1, 0.02, 2.9)]


def make_state(k):
    rng = np.random.default_rng(10 + k)
    q = DEFAULT_29 + rng.uniform(-0.3, 0.3, 29)
    dq = rng.uniform(-2.0, 2.0, 29)  # ankles included, so their zeroing is visible
    return RobotState(stamp=0.0, joint_pos=q, joint_vel=dq, imu_quat=quat_zyx(*IMU_RPY[k]),
                      imu_gyro=np.array([0.3, -0.2, 0.5]) * (k + 1))


def make_action(k, n):
    return np.random.default_rng(50 + k).uniform(-12.0, 12.0, n)  # some beyond the ±10 clip: fed back raw


def expected_proprio(state_k, action, idx):
    s = make_state(state_k)
    roll, pitch, _ = IMU_RPY[state_k]
    dq = s.joint_vel.copy()
    dq[ANKLES] = 0.0
    return np.concatenate([s.imu_gyro * 0.25, [roll, pitch], (s.joint_pos - DEFAULT_29)[idx],
                           dq[idx] * 0.05, action])


NOW0 = WINDOW_START + 0.37


# --- TWIST2 -----------------------------------------------------------------------------------------


def twist2_mimic(now):
    f = expected_ref_frame(now + 0.02)  # one control step ahead
    return np.concatenate([f["v"][:2], [f["height"], f["roll"], f["pitch"], f["yaw_rate"]], f["q"]])


def test_twist2_observation_matches_hand_computation_with_history():
    builder = ObservationBuilder(load_contract("twist2_student"))
    window = make_window()
    entries = []  # (mimic | proprio) of each step
    last_action = np.zeros(29)
    for k in range(3):
        now = NOW0 + 0.02 * k
        obs = builder.build(make_state(k), window, now, last_action)
        mimic = twist2_mimic(now)
        proprio = expected_proprio(k, last_action, list(range(29)))
        assert mimic.shape == (35,) and proprio.shape == (92,)
        history = [np.zeros(127)] * (10 - len(entries)) + entries  # oldest first, current excluded
        expected = np.concatenate([mimic, proprio] + history + [mimic])
        assert obs.shape == (1432,)
        np.testing.assert_allclose(obs, expected, rtol=0, atol=1e-9)
        builder.commit()
        entries.append(np.concatenate([mimic, proprio]))
        last_action = make_action(k, 29)
    # The history really holds earlier steps: step 0's entry differs from step 2's current values.
    assert np.abs(entries[0] - entries[2]).max() > 0.1


def test_twist2_history_drops_oldest_after_eleven_steps_and_reset_zeroes_it():
    builder = ObservationBuilder(load_contract("twist2_student"))
    window = make_window()
    entries = []
    for k in range(12):
        now = NOW0 + 0.02 * k
        obs = builder.build(make_state(k % 3), window, now, np.full(29, float(k)))
        builder.commit()
        proprio = expected_proprio(k % 3, np.full(29, float(k)), list(range(29)))
        entries.append(np.concatenate([twist2_mimic(now), proprio]))
    obs = builder.build(make_state(0), window, NOW0 + 0.24, np.zeros(29))
    np.testing.assert_allclose(obs[127:1397], np.concatenate(entries[-10:]), atol=1e-9)
    builder.reset()
    obs = builder.build(make_state(0), window, NOW0, np.zeros(29))
    assert np.all(obs[127:1397] == 0.0)


def test_build_without_commit_does_not_advance_history():
    builder = ObservationBuilder(load_contract("twist2_student"))
    window = make_window()
    builder.build(make_state(1), window, NOW0, np.ones(29))
    obs = builder.build(make_state(2), window, NOW0, np.ones(29))
    assert np.all(obs[127:1397] == 0.0)


# --- GMT --------------------------------------------------------------------------------------------


def gmt_mimic(now):
    rows = []
    for k in [1] + list(range(5, 100, 5)):
        f = expected_ref_frame(now + 0.02 * k)
        rows.append(np.concatenate([[f["height"], f["roll"], f["pitch"]], f["v"], [f["yaw_rate"]], f["q"][GMT_IDX]]))
    assert len(rows) == 20 and all(r.shape == (30,) for r in rows)
    return np.concatenate(rows)


def test_gmt_observation_matches_hand_computation_with_history():
    builder = ObservationBuilder(load_contract("gmt_student"))
    window = make_window()
    history = []
    last_action = np.zeros(23)
    for k in range(3):
        now = NOW0 + 0.02 * k
        obs = builder.build(make_state(k), window, now, last_action)
        proprio = expected_proprio(k, last_action, GMT_IDX)
        assert proprio.shape == (74,)
        expected = np.concatenate([gmt_mimic(now), proprio] + [np.zeros(74)] * (20 - len(history)) + history)
        assert obs.shape == (2154,)
        np.testing.assert_allclose(obs, expected, rtol=0, atol=1e-9)
        builder.commit()
        history.append(proprio)
        last_action = make_action(k, 23)


def test_reference_frames_are_at_future_control_steps():
    builder = ObservationBuilder(load_contract("gmt_student"))
    times = builder.reference_times(10.0)
    np.testing.assert_allclose(times, 10.0 + 0.02 * np.array([1] + list(range(5, 100, 5))), atol=1e-12)


# --- input checks and the registry -------------------------------------------------------------------


def test_reference_terms_need_a_window():
    builder = ObservationBuilder(load_contract("gmt_student"))
    with pytest.raises(ValueError, match="observes the reference motion but no window"):
        builder.build(make_state(0), None, NOW0, np.zeros(23))


def test_last_action_of_wrong_width_is_refused():
    builder = ObservationBuilder(load_contract("gmt_student"))
    with pytest.raises(ValueError, match=r"last_action has shape \(29,\), expected \(23,\)"):
        builder.build(make_state(0), make_window(), NOW0, np.zeros(29))


def test_describe_names_the_term_of_an_index():
    builder = ObservationBuilder(load_contract("twist2_student"))
    mimic_terms = "ref_root_lin_vel_xy+ref_root_height+ref_root_roll_pitch+ref_root_yaw_rate+ref_joint_pos"
    assert builder.describe(0) == f"mimic.{mimic_terms}[0]"
    assert builder.describe(40) == "proprio.joint_pos_rel[0]"
    assert builder.describe(1431) == "mimic_again.copy(mimic)[34]"


def test_registry_is_explicit_and_sizes_depend_on_the_contract():
    gmt, twist2 = load_contract("gmt_student"), load_contract("twist2_student")
    assert {"base_ang_vel", "joint_vel", "ref_joint_pos", "ref_root_lin_vel"} <= set(TERMS)
    from gmt_ros.core.contract import TermSpec

    assert TERMS["ref_joint_pos"](gmt, {}).size == 23
    assert TERMS["ref_joint_pos"](twist2, {}).size == 29
    assert TERMS["last_action"](gmt, {}).size == 23
    assert TermSpec("base_ang_vel", {}).name == "base_ang_vel"
