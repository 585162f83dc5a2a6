"""TrackingPolicy: action → PD mapping, held joints, refusal of bad input/output, the real TWIST2
network on real observations.

The ``onnx`` package is not installed, so graphs with known behaviour are written here by
hand-encoding the ONNX protobuf (a MatMul + Add graph: ``action = obs @ W + b``) and run by the
real onnxruntime.
"""
import numpy as np
import pytest
import yaml

from gmt_ros.core import paths
from gmt_ros.core.contract import load_contract
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.policy import OnnxPolicy, TrackingPolicy
from gmt_ros.core.state import RobotState

DEFAULT_29 = np.array(
    [-0.2, 0, 0, 0.4, -0.2, 0] * 2 + [0, 0, 0] + [0, 0.4, 0, 1.2, 0, 0, 0] + [0, -0.4, 0, 1.2, 0, 0, 0], dtype=float
)
GMT_SLOTS = list(range(19)) + [22, 23, 24, 25]
WRIST_SLOTS = [19, 20, 21, 26, 27, 28]


# --- a minimal ONNX (protobuf) writer ---------------------------------------------------------------


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_int(field, n):
    return _varint(field << 3) + _varint(n)


def _field_bytes(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _field_str(field, text):
    return _field_bytes(field, text.encode())


def _tensor(name, array):  # TensorProto: dims 1, data_type 2 (FLOAT = 1), name 8, raw_data 9
    a = np.ascontiguousarray(array, dtype="<f4")
    dims = b"".join(_field_int(1, d) for d in a.shape)
    return dims + _field_int(2, 1) + _field_str(8, name) + _field_bytes(9, a.tobytes())


def _value_info(name, width):  # ValueInfoProto{name, TypeProto{tensor_type{elem_type, shape[batch, width]}}}
    shape = _field_bytes(1, _field_str(2, "batch")) + _field_bytes(1, _field_int(1, width))
    tensor_type = _field_int(1, 1) + _field_bytes(2, shape)
    return _field_str(1, name) + _field_bytes(2, _field_bytes(1, tensor_type))


def _node(op, inputs, outputs):  # NodeProto: input 1, output 2, op_type 4
    return b"".join(_field_str(1, i) for i in inputs) + b"".join(_field_str(2, o) for o in outputs) + _field_str(4, op)


def affine_onnx(path, weight, bias, input_name="input", output_name="output"):
    """Write an opset-11 model computing ``output = input @ weight + bias``."""
    graph = (
        _field_bytes(1, _node("MatMul", [input_name, "W"], ["xw"]))
        + _field_bytes(1, _node("Add", ["xw", "b"], [output_name]))
        + _field_str(2, "affine")
        + _field_bytes(5, _tensor("W", weight))
        + _field_bytes(5, _tensor("b", bias))
        + _field_bytes(11, _value_info(input_name, weight.shape[0]))
        + _field_bytes(12, _value_info(output_name, weight.shape[1]))
    )
    opset = _field_str(1, "") + _field_int(2, 11)
    model = _field_int(1, 7) + _field_str(2, "gmt_ros-test") + _field_bytes(7, graph) + _field_bytes(8, opset)
    path.write_bytes(model)
    return path


# The GMT proprio block starts at 600 (after 20 frames x 30); q - default is at 605..627.
GMT_Q_REL = 605
GMT_BIAS = np.zeros(23)
GMT_BIAS[3] = 25.0  # left knee: beyond the clip
GMT_BIAS[19] = -12.5  # right shoulder pitch: beyond the clip


@pytest.fixture(scope="module")
def gmt_graph(tmp_path_factory):
    """action = (q - default) of the GMT joints + GMT_BIAS."""
    w = np.zeros((2154, 23))
    w[GMT_Q_REL + np.arange(23), np.arange(23)] = 1.0
    return affine_onnx(tmp_path_factory.mktemp("onnx") / "gmt_affine.onnx", w, GMT_BIAS)


@pytest.fixture(scope="module")
def twist2():
    return TrackingPolicy("twist2_student")


# --- states and windows -------------------------------------------------------------------------------


def standing_state(q=None):
    return RobotState(stamp=0.0, joint_pos=DEFAULT_29.copy() if q is None else np.asarray(q, float),
                      joint_vel=np.zeros(29), imu_quat=np.array([1.0, 0, 0, 0]), imu_gyro=np.zeros(3))


def pose_window(q29, n=120, height=0.79):
    frames = MotionFrames(
        root_pos=np.tile([0.0, 0.0, height], (n, 1)), root_quat=np.tile([1.0, 0, 0, 0], (n, 1)),
        root_lin_vel=np.zeros((n, 3)), root_ang_vel=np.zeros((n, 3)),
        joint_pos=np.tile(q29, (n, 1)), joint_vel=np.zeros((n, 29)),
    )
    return MotionWindow(start_time=0.0, dt=0.02, frames=frames, joint_mask=np.ones(29, bool))


def walking_window(n=150):
    """A forward walk in closed form: root moving at 0.5 m/s, swaying and yawing, legs swinging."""
    t = np.arange(n) * 0.02
    yaw = 0.2 * t
    roll = 0.04 * np.sin(2 * np.pi * t)
    quat = np.stack([np.cos(yaw / 2) * np.cos(roll / 2), np.cos(yaw / 2) * np.sin(roll / 2),
                     np.sin(yaw / 2) * np.sin(roll / 2), np.sin(yaw / 2) * np.cos(roll / 2)], axis=1)
    q = np.tile(DEFAULT_29, (n, 1))
    swing = 0.35 * np.sin(2 * np.pi * t)
    q[:, 0] += swing
    q[:, 6] -= swing
    q[:, 3] += 0.3 * np.maximum(swing, 0)
    q[:, 9] += 0.3 * np.maximum(-swing, 0)
    frames = MotionFrames(
        root_pos=np.stack([0.5 * t, 0 * t, 0.78 + 0.01 * np.sin(4 * np.pi * t)], axis=1), root_quat=quat,
        root_lin_vel=np.stack([0.5 * np.cos(yaw), 0.5 * np.sin(yaw), 0 * t], axis=1),
        root_ang_vel=np.tile([0.0, 0.0, 0.2], (n, 1)), joint_pos=q, joint_vel=np.gradient(q, 0.02, axis=0),
    )
    return MotionWindow(start_time=0.0, dt=0.02, frames=frames, joint_mask=np.ones(29, bool))


# --- action → PD mapping ------------------------------------------------------------------------------


def test_twist2_action_mapping_by_hand(twist2):
    a = np.linspace(-14.0, 14.0, 29)  # ends beyond the ±10 clip
    cmd = twist2.action_to_command(a)
    for j in range(29):
        clipped = min(max(a[j], -10.0), 10.0)
        assert cmd.q[j] == pytest.approx(DEFAULT_29[j] + 0.5 * clipped, abs=1e-12)
    assert cmd.q[0] == pytest.approx(-0.2 - 5.0) and cmd.q[28] == pytest.approx(0.0 + 5.0)
    np.testing.assert_array_equal(cmd.kp, [100, 100, 100, 150, 40, 40] * 2 + [150] * 3 + ([40] * 4 + [20] * 3) * 2)
    np.testing.assert_array_equal(cmd.kd, [2, 2, 2, 4, 2, 2] * 2 + [4] * 3 + ([5] * 4 + [1] * 3) * 2)
    assert np.all(cmd.dq == 0) and np.all(cmd.tau == 0) and np.all(cmd.enabled)


def test_gmt_mapping_places_23_actions_and_holds_wrists(gmt_graph):
    policy = TrackingPolicy("gmt_student", onnx_path=gmt_graph)
    a = np.arange(23, dtype=float) - 11.0  # -11 .. 11: both ends clipped
    cmd = policy.action_to_command(a)
    for i, slot in enumerate(GMT_SLOTS):
        assert cmd.q[slot] == pytest.approx(DEFAULT_29[slot] + 0.5 * np.clip(a[i], -10, 10), abs=1e-12)
    assert np.all(cmd.q[WRIST_SLOTS] == 0.0)
    assert np.all(cmd.kp[WRIST_SLOTS] == 20.0) and np.all(cmd.kd[WRIST_SLOTS] == 1.0)
    np.testing.assert_array_equal(cmd.kp[GMT_SLOTS], [100, 100, 100, 150, 40, 40] * 2 + [150] * 3 + [40] * 8)
    np.testing.assert_array_equal(cmd.kd[GMT_SLOTS], [2, 2, 2, 4, 2, 2] * 2 + [4] * 3 + [5] * 8)


def test_gmt_step_end_to_end_through_a_known_graph(gmt_graph):
    """obs → graph → command, checked by hand: the graph returns (q - default) + bias."""
    policy = TrackingPolicy("gmt_student", onnx_path=gmt_graph)
    offset = np.linspace(-0.2, 0.2, 29)
    state = standing_state(DEFAULT_29 + offset)
    cmd = policy.step(state, pose_window(DEFAULT_29), now=0.0)
    raw = offset[GMT_SLOTS] + GMT_BIAS
    np.testing.assert_allclose(policy.last_action, raw, atol=1e-6)  # float32 network
    np.testing.assert_allclose(cmd.q[GMT_SLOTS], DEFAULT_29[GMT_SLOTS] + 0.5 * np.clip(raw, -10, 10), atol=1e-6)
    assert cmd.q[3] == pytest.approx(0.4 + 5.0) and cmd.q[22] == pytest.approx(0.0 - 5.0)
    assert np.all(cmd.q[WRIST_SLOTS] == 0.0)
    # The next observation carries the raw (unclipped) action, 25 and -12.5 included.
    policy.step(state, pose_window(DEFAULT_29), now=0.02)
    np.testing.assert_allclose(policy.last_observation[651:674], raw, atol=1e-6)
    assert policy.last_observation[651 + 3] == pytest.approx(25.0 + offset[3], abs=1e-6)


# --- bad input and bad output -------------------------------------------------------------------------


def test_nan_state_and_window_are_refused_and_leave_the_policy_untouched(gmt_graph):
    policy = TrackingPolicy("gmt_student", onnx_path=gmt_graph)
    window = pose_window(DEFAULT_29)
    policy.step(standing_state(DEFAULT_29 + 0.01), window, 0.0)
    action, obs = policy.last_action, policy.last_observation
    bad = standing_state()
    bad.joint_vel[7] = np.nan
    with pytest.raises(ValueError, match=r"RobotState.joint_vel contains NaN"):
        policy.step(bad, window, 0.02)
    bad_window = pose_window(DEFAULT_29)
    bad_window.frames.root_pos[5, 2] = np.nan
    with pytest.raises(ValueError, match="motion window: root_pos contains NaN"):
        policy.step(standing_state(), bad_window, 0.02)
    with pytest.raises(ValueError, match="now must be a finite time"):
        policy.step(standing_state(), window, float("nan"))
    short = standing_state()
    short.joint_pos = np.zeros(23)
    with pytest.raises(ValueError, match=r"joint_pos has shape \(23,\), expected \(29,\)"):
        policy.step(short, window, 0.02)
    np.testing.assert_array_equal(policy.last_action, action)
    np.testing.assert_array_equal(policy.last_observation, obs)
    # History untouched: the next good step sees exactly one committed step in its history.
    policy.step(standing_state(), window, 0.02)
    hist = policy.last_observation[674:].reshape(20, 74)
    assert np.all(hist[:19] == 0.0)
    np.testing.assert_array_equal(hist[19], obs[600:674])


def test_nan_network_output_is_refused(tmp_path):
    bias = np.zeros(29)
    bias[13] = np.nan
    graph = affine_onnx(tmp_path / "nan.onnx", np.zeros((1432, 29)), bias)
    policy = TrackingPolicy("twist2_student", onnx_path=graph)
    with pytest.raises(ValueError, match=r"non-finite action for \['waist_roll_joint'\]"):
        policy.step(standing_state(), pose_window(DEFAULT_29), 0.0)
    assert np.all(policy.last_action == 0.0) and policy.last_observation is None


def test_wrong_action_shape_is_refused(twist2):
    with pytest.raises(ValueError, match=r"action has shape \(23,\), expected \(29,\)"):
        twist2.action_to_command(np.zeros(23))


def test_graph_that_does_not_fit_the_contract_is_refused(tmp_path):
    graph = affine_onnx(tmp_path / "small.onnx", np.zeros((1432, 23)), np.zeros(23))
    with pytest.raises(ValueError, match=r"contract says action_dim 29 but small.onnx output 'output' has width 23"):
        OnnxPolicy(load_contract("twist2_student"), graph)


def test_a_contract_without_its_onnx_file_says_so(tmp_path):
    contract = tmp_path / "contract.yaml"
    contract.write_text((paths.models_dir() / "gmt_student" / "contract.yaml").read_text())
    with pytest.raises(FileNotFoundError, match=r"policy 'gmt_student': ONNX file .*gmt_student.onnx not found"):
        TrackingPolicy(str(contract))


def test_the_shipped_gmt_student_loads_against_its_contract():
    """models/gmt_student/gmt_student.onnx (distilled by gmt-ros distill): graph and sha256 checked."""
    policy = TrackingPolicy("gmt_student")
    assert policy.contract.onnx_sha256 is not None  # the export's hash, checked at load
    out = policy.network(np.zeros(2154))
    assert out.shape == (23,) and np.all(np.isfinite(out))


def test_onnx_file_with_another_hash_is_refused(tmp_path):
    data = yaml.safe_load((paths.models_dir() / "twist2_student" / "contract.yaml").read_text())
    graph = affine_onnx(tmp_path / "impostor.onnx", np.zeros((1432, 29)), np.zeros(29))
    data["onnx"] = "impostor.onnx"
    (tmp_path / "contract.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"impostor.onnx has sha256 [0-9a-f]{64}, the contract expects 2d1fb3a3"):
        TrackingPolicy(load_contract(tmp_path / "contract.yaml"))
    assert graph.is_file()


def test_shipped_twist2_model_is_the_published_file():
    import hashlib

    path = paths.models_dir() / "twist2_student" / "twist2_student.onnx"
    expected = "2d1fb3a31e4e967f70ecfefc3ad1e7b2ac491677068b89f60b565a94e7735061"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected


# --- the real TWIST2 network --------------------------------------------------------------------------


def test_real_twist2_runs_on_a_walking_reference(twist2):
    twist2.reset(standing_state())
    window = walking_window()
    state = standing_state()
    for k in range(50):
        cmd = twist2.step(state, window, now=0.02 * k)
        assert twist2.last_action.shape == (29,) and np.all(np.isfinite(twist2.last_action))
        # Feed the command back as if the joints tracked it, so the observation keeps changing.
        state = standing_state(cmd.q)
    assert twist2.last_observation.shape == (1432,)
    assert np.abs(twist2.last_action).max() < 10.0  # inside the clip on an ordinary walk


def test_real_twist2_holds_still_when_reference_and_robot_stand(twist2):
    """A tracker standing at its default pose with a standing reference commands targets near it
    once the zero history has been flushed (the published model: < 0.2 rad after 12 steps)."""
    twist2.reset()
    for k in range(15):
        cmd = twist2.step(standing_state(), pose_window(DEFAULT_29), now=0.02 * k)
    assert np.abs(cmd.q - DEFAULT_29).max() < 0.3


def test_real_twist2_moves_arms_towards_the_reference(twist2):
    """A reference with the left shoulder pitched forward (-1.0) and the elbow straighter (0.3)
    makes the policy command those joints away from default in the same direction; a swapped or
    misordered mimic block would not."""
    twist2.reset()
    ref = DEFAULT_29.copy()
    ref[15], ref[18] = -1.0, 0.3
    for k in range(5):
        cmd = twist2.step(standing_state(), pose_window(ref), now=0.02 * k)
    assert cmd.q[15] < -0.5 and cmd.q[18] < 0.9
    assert abs(cmd.q[22] - DEFAULT_29[22]) < 0.5  # the right shoulder was not asked to move
