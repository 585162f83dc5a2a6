"""Stream frames: what a producer may send (by name, any order, 23 or 29 joints, velocities
optional) and every refusal, each naming the problem; the ZMQ JSON message both ways."""
import json
import math

import numpy as np
import pytest

from gmt_ros.core import g1
from gmt_ros.core.named_pose import FLOATING_BASE_JOINTS
from gmt_ros.core.stream_frame import (
    StreamFrameError,
    decode_frame_json,
    encode_frame_json,
    frame_columns,
    frame_from_named,
)

ROOT = [0.5, -0.25, 0.78, 1.0, 0.0, 0.0, 0.0]


def _positions(names):
    q = {n: 0.01 * (i + 1) for i, n in enumerate(g1.JOINT_NAMES)}
    return ROOT + [q[n] for n in names[7:]]


def test_joints_are_found_by_name_in_any_order_and_unsupplied_ones_are_masked():
    joints = list(reversed(g1.GMT23_NAMES))
    names = list(reversed(FLOATING_BASE_JOINTS)) + joints  # qz first ... x last
    pos = list(reversed(ROOT)) + [0.01 * (g1.SLOT_OF[n] + 1) for n in joints]
    f = frame_from_named(names, pos, stamp=12.5, seq=3)
    np.testing.assert_allclose(f.root_pos, ROOT[:3])
    np.testing.assert_allclose(f.root_quat, ROOT[3:7])
    for name in g1.GMT23_NAMES:
        assert f.joint_pos[g1.SLOT_OF[name]] == pytest.approx(0.01 * (g1.SLOT_OF[name] + 1))
    assert f.joint_mask.sum() == 23
    assert not f.joint_mask[list(g1.WRIST_SLOTS)].any() and not f.joint_pos[list(g1.WRIST_SLOTS)].any()
    assert f.stamp == 12.5 and f.seq == 3 and not f.has_velocities


def test_velocities_and_a_slightly_unnormalised_quaternion():
    names = frame_columns()
    pos = _positions(names)
    pos[3:7] = [0.0, 0.0, 0.0, 1.04]  # |q| 1.04: normalised
    vel = [0.1, 0.2, 0.3, 0.0, 0.4, 0.5, 0.6] + [1.0] * 29
    f = frame_from_named(names, pos, vel, stamp=1.0)
    np.testing.assert_allclose(f.root_quat, [0, 0, 0, 1])
    np.testing.assert_allclose(f.root_lin_vel, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(f.root_ang_vel, [0.4, 0.5, 0.6])
    assert f.has_velocities and f.joint_vel.sum() == 29


@pytest.mark.parametrize("change, reason, words", [
    (lambda n, p: (n + ["left_knee_joint"], p + [0.0]), "duplicate_joint", "left_knee_joint"),
    (lambda n, p: (n[1:], p[1:]), "missing_floating_base", "floating_base_x"),
    (lambda n, p: (n + ["left_toe_joint"], p + [0.0]), "unknown_joint", "left_toe_joint"),
    (lambda n, p: (n, p[:-1]), "length_mismatch", "35 positions for 36 names"),
    (lambda n, p: (n, p[:10] + [math.nan] + p[11:]), "not_finite", g1.JOINT_NAMES[3]),
    (lambda n, p: (n, p[:3] + [0.5, 0.0, 0.0, 0.0] + p[7:]), "bad_quaternion", "norm 0.5000"),
])
def test_bad_frames_are_refused_naming_the_problem(change, reason, words):
    names, pos = change(frame_columns(), _positions(frame_columns()))
    with pytest.raises(StreamFrameError) as err:
        frame_from_named(names, pos, stamp=1.0)
    assert err.value.reason == reason
    assert words in str(err.value)


def test_required_joints_and_the_stamp():
    names = frame_columns(g1.GMT23_NAMES[:-1])
    with pytest.raises(StreamFrameError) as err:
        frame_from_named(names, _positions(names), stamp=1.0, required=g1.GMT23_NAMES)
    assert err.value.reason == "missing_joints" and g1.GMT23_NAMES[-1] in str(err.value)
    names = frame_columns()
    for stamp in (math.nan, 0.0, -3.0, "soon"):
        with pytest.raises(StreamFrameError) as err:
            frame_from_named(names, _positions(names), stamp=stamp)
        assert err.value.reason == "bad_stamp"
    with pytest.raises(StreamFrameError, match="velocity of right_elbow_joint"):
        vel = [0.0] * 36
        vel[names.index("right_elbow_joint")] = math.inf
        frame_from_named(names, _positions(names), vel, stamp=1.0)


def test_json_message_round_trip_and_refusals():
    names = frame_columns(g1.GMT23_NAMES)
    pos = _positions(names)
    msg = encode_frame_json(1700000000.25, names, pos, seq=9)
    f = decode_frame_json(msg, required=g1.GMT23_NAMES)
    assert f.stamp == 1700000000.25 and f.seq == 9
    np.testing.assert_allclose(f.joint_pos[g1.slots_of(g1.GMT23_NAMES)], pos[7:])
    bad = {
        b"not json": "not JSON",
        b"[1, 2]": "JSON list, not an object",
        json.dumps({"stamp": 1.0, "names": names}).encode(): "lacks positions",
        json.dumps({"stamp": 1.0, "names": names, "positions": ["a"] * len(names)}).encode(): "list of numbers",
        json.dumps({"stamp": 1.0, "names": names, "positions": pos, "seq": 1.5}).encode(): "'seq' must be an integer",
        b" " * 70000: "bytes (at most",
    }
    for data, words in bad.items():
        with pytest.raises(StreamFrameError) as err:
            decode_frame_json(data)
        assert err.value.reason == "malformed" and words in str(err.value)
    lost = json.dumps({"stamp": 1.0, "names": names, "positions": pos[:12] + [None] + pos[13:]}).encode()
    with pytest.raises(StreamFrameError) as err:
        decode_frame_json(lost)
    assert err.value.reason == "not_finite" and names[12] in str(err.value)
