"""Policy contracts: the shipped ones load, malformed ones are refused with a message naming the
problem, and a contract that does not fit its ONNX graph is refused."""
import copy

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from gmt_ros.core import g1, paths
from gmt_ros.core.contract import check_against_onnx, load_contract, resolve_contract_path

TWIST2_ONNX = paths.models_dir() / "twist2_student" / "twist2_student.onnx"


def raw(name):
    return yaml.safe_load((paths.models_dir() / name / "contract.yaml").read_text())


def write(tmp_path, data):
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def refused(tmp_path, data, match):
    with pytest.raises(ValueError, match=match):
        load_contract(write(tmp_path, data))


@pytest.fixture(scope="module")
def twist2_session():
    return ort.InferenceSession(str(TWIST2_ONNX), providers=["CPUExecutionProvider"])


# --- the shipped contracts ---------------------------------------------------------------------------


def test_twist2_contract_states_the_published_facts():
    c = load_contract("twist2_student")
    assert (c.obs_dim, c.action_dim, c.rate_hz, c.history_length) == (1432, 29, 50.0, 10)
    assert c.joint_names == g1.JOINT_NAMES
    assert c.future_offsets == (1,)
    np.testing.assert_array_equal(c.default_pose, g1.DEFAULT_POSE)
    np.testing.assert_array_equal(c.kp[:15], [100, 100, 100, 150, 40, 40] * 2 + [150] * 3)
    np.testing.assert_array_equal(c.kd[:15], [2, 2, 2, 4, 2, 2] * 2 + [4] * 3)
    assert np.all(c.action_scale == 0.5) and c.action_clip == 10.0
    assert c.held_joints == ()
    assert c.onnx_path == TWIST2_ONNX.resolve()
    assert c.control_dt == pytest.approx(0.02)


def test_gmt_contract_states_the_published_facts():
    c = load_contract("gmt_student")
    assert (c.obs_dim, c.action_dim, c.history_length) == (2154, 23, 20)
    assert c.joint_names == g1.GMT23_NAMES
    assert c.future_offsets == (1,) + tuple(range(5, 100, 5))
    np.testing.assert_array_equal(c.torque_limit, [88, 139, 88, 139, 50, 50] * 2 + [88, 50, 50] + [25] * 8)
    held = {h.name: (h.target, h.kp, h.kd) for h in c.held_joints}
    assert held == {g1.JOINT_NAMES[s]: (0.0, 20.0, 1.0) for s in g1.WRIST_SLOTS}


def test_contract_arrays_are_read_only():
    c = load_contract("twist2_student")
    with pytest.raises(ValueError):
        c.kp[0] = 1000.0


def test_bare_name_resolves_under_models_dir_and_paths_are_kept(tmp_path):
    assert resolve_contract_path("gmt_student") == paths.models_dir() / "gmt_student" / "contract.yaml"
    assert resolve_contract_path(tmp_path / "x.yaml") == tmp_path / "x.yaml"
    assert resolve_contract_path("some/dir/c.yaml").name == "c.yaml"


def test_missing_contract_lists_the_shipped_ones():
    match = r"no_such_policy.*shipped contracts: \[.*'gmt_student'.*'twist2_student'"
    with pytest.raises(FileNotFoundError, match=match):
        load_contract("no_such_policy")


# --- contract against the ONNX graph -----------------------------------------------------------------


def test_shipped_twist2_contract_matches_its_graph(twist2_session):
    check_against_onnx(load_contract("twist2_student"), twist2_session)


def test_gmt_contract_against_twist2_graph_names_both_widths(twist2_session):
    with pytest.raises(ValueError) as err:
        check_against_onnx(load_contract("gmt_student"), twist2_session, "twist2_student.onnx")
    msg = str(err.value)
    assert "contract says obs_dim 2154 but twist2_student.onnx input 'input' has width 1432" in msg
    assert "contract says action_dim 23 but twist2_student.onnx output 'output' has width 29" in msg


def test_wrong_input_name_is_named(tmp_path, twist2_session):
    data = raw("twist2_student")
    data["input_name"] = "obs"
    c = load_contract(write(tmp_path, data))
    match = r"contract says input_name 'obs' but twist2_student.onnx inputs are \['input'\]"
    with pytest.raises(ValueError, match=match):
        check_against_onnx(c, twist2_session)


def test_obs_dim_changed_is_refused_at_load(tmp_path):
    data = raw("twist2_student")
    data["obs_dim"] = 1433
    refused(tmp_path, data, "the observation blocks add up to 1432 values but obs_dim is 1433")


def test_layout_changed_to_match_a_wrong_obs_dim_is_refused_by_the_graph(tmp_path, twist2_session):
    # A contract can be self-consistent and still not fit the network: drop the trailing mimic copy.
    data = raw("twist2_student")
    data["observation"] = data["observation"][:-1]
    data["obs_dim"] = 1397
    c = load_contract(write(tmp_path, data))
    match = "contract says obs_dim 1397 but twist2_student.onnx input 'input' has width 1432"
    with pytest.raises(ValueError, match=match):
        check_against_onnx(c, twist2_session)


# --- malformed contracts -----------------------------------------------------------------------------


def test_unknown_observation_term(tmp_path):
    data = raw("twist2_student")
    data["observation"][1]["terms"][1] = "base_roll_pitch_yaw"
    refused(tmp_path, data,
            r"observation block 'proprio': unknown observation term 'base_roll_pitch_yaw'; known: .*base_roll_pitch")


def test_unknown_term_parameter(tmp_path):
    data = raw("twist2_student")
    data["observation"][1]["terms"][0] = {"term": "base_ang_vel", "scael": 0.25}
    refused(tmp_path, data, r"term 'base_ang_vel': unknown parameter\(s\) \['scael'\]")


def test_zero_joints_must_be_policy_joints(tmp_path):
    data = raw("gmt_student")
    data["observation"][1]["terms"][3]["zero_joints"] = ["left_wrist_roll_joint"]
    refused(tmp_path, data, r"zero_joints \['left_wrist_roll_joint'\] are not policy joints")


def test_per_joint_list_of_wrong_length(tmp_path):
    data = raw("twist2_student")
    data["kd"] = data["kd"][:-1]
    refused(tmp_path, data, "kd has 28 entries but joint_names has 29")


def test_unknown_joint_name(tmp_path):
    data = raw("gmt_student")
    data["joint_names"][3] = "left_knee"
    refused(tmp_path, data, "unknown G1 joint name 'left_knee' in joint_names")


def test_unknown_held_joint(tmp_path):
    data = raw("gmt_student")
    data["held_joints"]["left_wrist"] = data["held_joints"].pop("left_wrist_roll_joint")
    refused(tmp_path, data, "held_joints: unknown G1 joint name 'left_wrist'")


def test_joint_neither_driven_nor_held(tmp_path):
    data = raw("gmt_student")
    del data["held_joints"]["right_wrist_yaw_joint"]
    refused(tmp_path, data,
            r"joint\(s\) \['right_wrist_yaw_joint'\] are neither driven by the policy nor listed in held_joints")


def test_negative_gain(tmp_path):
    data = raw("twist2_student")
    data["kp"][9] = -150
    refused(tmp_path, data, r"kp is negative for right_knee_joint \(-150.0\)")


def test_torque_limit_above_motor_rating(tmp_path):
    data = raw("twist2_student")
    data["torque_limit"][20] = 25  # left wrist pitch motor is rated 5 N·m
    refused(tmp_path, data, r"torque_limit for left_wrist_pitch_joint is 25.0 N·m; it must be in \(0, 5.0\]")


def test_default_pose_outside_joint_range(tmp_path):
    data = raw("twist2_student")
    data["default_pose"][3] = -0.5  # knee cannot bend backwards
    refused(tmp_path, data, r"default_pose -0.5 for left_knee_joint is outside its range")


def test_action_dim_must_match_joint_count(tmp_path):
    data = raw("gmt_student")
    data["action_dim"] = 29
    refused(tmp_path, data, "action_dim 29 differs from the 23 joint_names")


def test_unknown_and_missing_fields(tmp_path):
    data = raw("twist2_student")
    data["obs_size"] = 1432
    refused(tmp_path, data, r"unknown field\(s\) \['obs_size'\]")
    data = raw("twist2_student")
    del data["rate_hz"]
    refused(tmp_path, data, r"missing field\(s\) \['rate_hz'\]")


def test_history_length_without_history_block(tmp_path):
    data = raw("gmt_student")
    data["observation"] = data["observation"][:2]
    data["obs_dim"] = 674
    refused(tmp_path, data, "history_length is 20 but no observation block has history_of")


def test_history_of_unknown_block(tmp_path):
    data = raw("twist2_student")
    data["observation"][2]["history_of"] = ["mimic", "proprioception"]
    refused(tmp_path, data, "history block 'history' refers to 'proprioception', which is not a terms block")


def test_block_mixing_robot_and_reference_terms(tmp_path):
    data = raw("twist2_student")
    data["observation"][0]["terms"].append("base_roll_pitch")
    refused(tmp_path, data, "observation block 'mimic' mixes reference terms")


def test_future_offsets_must_increase(tmp_path):
    data = raw("gmt_student")
    data["future_offsets"][3] = 5
    refused(tmp_path, data, "future_offsets must be strictly increasing")


def test_not_yaml_and_not_a_mapping(tmp_path):
    path = tmp_path / "contract.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_contract(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="top level must be a mapping, got list"):
        load_contract(path)


def test_boolean_is_not_an_integer(tmp_path):
    data = copy.deepcopy(raw("twist2_student"))
    data["history_length"] = True
    refused(tmp_path, data, "history_length must be an integer >= 0, got True")


# --- identity ----------------------------------------------------------------------------------------


def test_identity_is_the_content_hash_so_layout_does_not_count_and_every_value_does(tmp_path):
    shipped = paths.models_dir() / "twist2_student" / "contract.yaml"
    original = load_contract(shipped).identity
    assert original.name == "twist2_student" and len(original.sha256) == 64
    assert original.wire == f"twist2_student@{original.sha256[:16]}"
    # The same document re-written (no comments, other key order, flow style): the same identity.
    data = raw("twist2_student")
    (tmp_path / "same").mkdir()
    relaid = tmp_path / "same" / "contract.yaml"
    relaid.write_text(yaml.safe_dump(dict(reversed(list(data.items()))), default_flow_style=True))
    assert load_contract(relaid).identity == original
    # One gain changed: another identity (a bridge holding the original refuses its targets).
    changed = copy.deepcopy(data)
    changed["kp"][3] += 1
    assert load_contract(write(tmp_path, changed)).identity.sha256 != original.sha256


def test_command_table_is_derived_once_per_contract():
    c = load_contract("twist2_student")
    assert c.command_table is c.command_table
    assert not c.command_table.default_pose.flags.writeable and not c.command_table.kp.flags.writeable
