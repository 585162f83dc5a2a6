"""Reference conventions (gmt_ros.core.reference): parsing, the velocity recipes on motions whose
derivatives are known, sampling, and that the contract, the window decoder and the player follow
them. GMT parity on the real clips is test_gmt_parity.py."""
import math

import numpy as np
import pytest
import yaml

from gmt_ros.core import g1, paths, reference, rotations
from gmt_ros.core.contract import load_contract
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.motion import MotionClip
from gmt_ros.core.reference import PRESETS, ReferenceConventions, parse_conventions
from gmt_ros.nodes.window_codec import decode_window, encode_window

GMT, TWIST2 = PRESETS["gmt"], PRESETS["twist2"]


def test_presets_and_mappings_parse_and_bad_ones_name_the_problem():
    assert parse_conventions("gmt") is GMT
    custom = parse_conventions({"preset": "gmt", "quaternions": "normalized"})
    assert custom.quaternions == "normalized" and custom.velocity_smoothing == 19
    full = parse_conventions(GMT.as_dict())
    assert full == GMT
    for value, match in (
        ("gmt2", r"unknown preset 'gmt2'; presets: \['gmt', 'plain', 'scoring', 'twist2'\]"),
        ({"preset": "gmt", "smoothing": 3}, r"unknown field\(s\) \['smoothing'\]"),
        ({"velocity_difference": "forward"}, r"missing field\(s\) \['velocity_smoothing'"),
        ({"preset": "gmt", "velocity_smoothing": 4}, "odd number of taps"),
        ({"preset": "gmt", "past_end": "bounce"}, r"past_end must be one of \['loop', 'hold'\]"),
        (3, "must be a preset name"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_conventions(value)


def test_contracts_name_their_authors_recipe_and_a_missing_one_is_refused(tmp_path):
    assert load_contract("gmt_student").reference is GMT
    assert load_contract("twist2_student").reference is TWIST2
    data = yaml.safe_load((paths.models_dir() / "gmt_student" / "contract.yaml").read_text())
    del data["reference"]
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"missing field\(s\) \['reference'\]"):
        load_contract(path)
    data["reference"] = {"preset": "gmt", "quaternions": "raw"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"contract .*: reference quaternions must be one of"):
        load_contract(path)


def _ramp_clip(fps=30.0, n=60, speed=0.5, yaw_rate=0.6, norm=0.96):
    """Root moving at constant speed and yaw rate, joints at constant speed; quaternions stored
    with a norm that is not 1."""
    t = np.arange(n) / fps
    quat = rotations.from_rpy(np.stack([np.zeros(n), np.zeros(n), yaw_rate * t], axis=1)) * norm
    joints = np.zeros((n, 29))
    joints[:, 3] = 0.4 + speed * t
    return MotionClip(name="ramp", fps=fps, root_pos=np.stack([speed * t, 0 * t, 0.75 + 0 * t], axis=1),
                      root_quat=quat, joint_pos=joints, joint_mask=np.ones(29, bool))


def test_velocity_recipes_on_a_constant_rate_motion():
    clip = _ramp_clip()
    # forward and central differences are exact here; GMT's zero padding shrinks the first and last
    # 9 frames, to 10/19 at the very ends; edge padding does not
    for conventions in (GMT, TWIST2, reference.SCORING):
        lin, ang, joint = clip.velocities(conventions)
        inside = slice(9, -9)
        np.testing.assert_allclose(lin[inside, 0], 0.5, atol=1e-9)
        if not conventions.as_stored:  # (stored non-unit quaternions: below)
            np.testing.assert_allclose(ang[inside, 2], 0.6, atol=1e-9)
        np.testing.assert_allclose(joint[inside, 3], 0.5, atol=1e-9)
    lin = clip.velocities(GMT)[0][:, 0]
    assert lin[0] == pytest.approx(0.5 * 10 / 19) and lin[-1] == pytest.approx(0.5 * 10 / 19)
    assert lin[4] == pytest.approx(0.5 * 14 / 19)
    np.testing.assert_allclose(clip.velocities(TWIST2)[0][:, 0], 0.5, atol=1e-9)
    np.testing.assert_allclose(clip.velocities(reference.SCORING)[0][:, 0], 0.5, atol=1e-9)
    # stored quaternions: the exponential map of a non-unit relative rotation is not the true rate
    # (GMT's recipe as it is); normalised ones give it
    assert abs(clip.velocities(GMT)[1][30, 2] - 0.6) > 0.01
    np.testing.assert_allclose(clip.velocities(parse_conventions({"preset": "gmt", "quaternions": "normalized"}))[1][9:-9, 2], 0.6, atol=1e-9)


def test_forward_differences_on_a_parabola():
    fps, n = 20.0, 40
    t = np.arange(n) / fps
    clip = MotionClip(name="p", fps=fps, root_pos=np.stack([t * t, 0 * t, 0.75 + 0 * t], axis=1),
                      root_quat=np.tile([1.0, 0, 0, 0], (n, 1)), joint_pos=np.zeros((n, 29)),
                      joint_mask=np.ones(29, bool))
    plain = parse_conventions({"preset": "gmt", "velocity_smoothing": 1})
    lin = clip.velocities(plain)[0][:, 0]
    np.testing.assert_allclose(lin[:-1], (t[1:] ** 2 - t[:-1] ** 2) * fps, atol=1e-12)  # = 2t + dt
    assert lin[-1] == lin[-2]
    central = clip.velocities(TWIST2)[0][:, 0]
    np.testing.assert_allclose(central[1:-1], 2 * t[1:-1], atol=1e-12)


def test_sampling_frame_velocities_stored_quaternions_and_past_the_end():
    clip = _ramp_clip()
    fps = clip.fps
    times = np.array([10.25, 10.75, 11.0, 11.0 - 1e-9]) / fps
    s = clip.sample(times, GMT)
    lin = clip.velocities(GMT)[0]
    np.testing.assert_array_equal(s.root_lin_vel, lin[[10, 10, 11, 11]])  # frame at or before, no blend
    np.testing.assert_allclose(s.joint_pos[:, 3], 0.4 + 0.5 * times, atol=1e-12)  # positions blended
    np.testing.assert_allclose(np.linalg.norm(s.root_quat[2], axis=-1), 0.96, atol=1e-12)  # stored norm at a frame
    interp = clip.sample(times[:2], reference.SCORING)
    np.testing.assert_allclose(np.linalg.norm(interp.root_quat, axis=1), 1.0, atol=1e-12)
    # past the end: GMT loops (frame 0 again at exactly one length), TWIST2 holds with zero velocity
    length = clip.duration
    looped = clip.sample([length, length + 2.0 / fps], GMT)
    np.testing.assert_allclose(looped.root_pos, clip.root_pos[[0, 2]], atol=1e-12)
    held = clip.sample([length + 0.5], TWIST2)
    np.testing.assert_allclose(held.root_pos[0], clip.root_pos[-1])
    assert not held.root_lin_vel.any() and not held.joint_vel.any()


def test_authors_formulas_for_a_stored_quaternion():
    rng = np.random.default_rng(0)
    q = rotations.from_rpy(rng.uniform(-0.5, 0.5, (50, 3)))
    v = rng.normal(size=(50, 3))
    n = rng.uniform(0.9, 1.0, (50, 1))
    # quat_rotate_inverse with |q| = n: n^2 R^T v + (n^2 - 1) v, written out from GMT's expression
    w, u = (q * n)[:, 0:1], (q * n)[:, 1:]
    gmt = v * (2 * w ** 2 - 1) - np.cross(u, v) * w * 2 + u * np.sum(u * v, axis=1, keepdims=True) * 2
    np.testing.assert_allclose(reference.rotate_inverse_as_stored(q * n, v), gmt, atol=1e-12)
    np.testing.assert_allclose(reference.rotate_inverse_as_stored(q, v), rotations.rotate_inverse(q, v), atol=1e-12)
    # exp map: the rotation vector for unit quaternions, 0 for tiny angles and beyond |w| = 1
    np.testing.assert_allclose(reference.exp_map(rotations.from_rpy(np.array([0.0, 0.0, 0.3]))), [0, 0, 0.3], atol=1e-12)
    assert not reference.exp_map(np.array([1.0, 1e-7, 0.0, 0.0])).any()
    assert not reference.exp_map(np.array([1.1, 0.0, 0.0, 0.1])).any()
    # slerp on stored values: the frames themselves at 0 and 1; q0 when identical
    a, b = q[0] * 0.95, q[1] * 0.97
    np.testing.assert_allclose(reference.slerp_as_stored(a, b, np.array(0.0)), a, atol=1e-12)
    np.testing.assert_allclose(reference.slerp_as_stored(a, b, np.array(1.0)), b, atol=1e-12)
    np.testing.assert_array_equal(reference.slerp_as_stored(q[0], q[0], np.array(0.4)), q[0])


def _window_points(n=30, dt=0.02, speed=0.5, norm=0.96):
    t = np.arange(n) * dt
    frames = MotionFrames(root_pos=np.stack([speed * t, 0 * t, 0.75 + 0 * t], axis=1),
                          root_quat=rotations.from_rpy(np.stack([0 * t, 0 * t, 0.4 * t], axis=1)) * norm,
                          root_lin_vel=np.zeros((n, 3)), root_ang_vel=np.zeros((n, 3)),
                          joint_pos=np.tile(g1.DEFAULT_POSE, (n, 1)), joint_vel=np.zeros((n, 29)))
    return MotionWindow(start_time=100.0, dt=dt, frames=frames, joint_mask=np.ones(29, bool))


def test_decoder_keeps_or_normalises_quaternions_and_computes_missing_velocities_by_the_contract():
    msg = encode_window(_window_points(), with_velocities=False)
    plain = decode_window(msg)
    np.testing.assert_allclose(np.linalg.norm(plain.frames.root_quat, axis=1), 1.0, atol=1e-12)
    gmt = decode_window(msg, conventions=GMT)
    np.testing.assert_allclose(np.linalg.norm(gmt.frames.root_quat, axis=1), 0.96, atol=1e-9)
    # constant speed: exact with the filter padded by the edge value at the window's ends (a live
    # window's ends are not the motion's: zero padding would halve the speed at "now")
    np.testing.assert_allclose(gmt.frames.root_lin_vel[:, 0], 0.5, atol=1e-9)
    twist2 = decode_window(msg, conventions=TWIST2)
    np.testing.assert_allclose(twist2.frames.root_lin_vel[:, 0], 0.5, atol=1e-9)


def test_decoder_frame_sampling_takes_the_point_at_or_before_each_grid_time():
    # points at 30 Hz with a velocity that changes every point; the 50 Hz grid reads them unblended
    times = np.arange(12) / 30.0
    window = _window_points(n=12)
    window.frames.root_lin_vel[:, 0] = np.arange(12)
    msg = encode_window(window)
    for i, p in enumerate(msg.points):
        p.time_from_start.sec, p.time_from_start.nanosec = 0, int(round(times[i] * 1e9))
    decoded = decode_window(msg, dt=0.02, conventions=GMT)
    grid = 0.02 * np.arange(len(decoded.frames))
    expected = np.floor(grid * 30.0 + 1e-6)
    np.testing.assert_array_equal(decoded.frames.root_lin_vel[:, 0], expected)
    blended = decode_window(msg, dt=0.02)
    np.testing.assert_allclose(blended.frames.root_lin_vel[:, 0], grid * 30.0, atol=1e-6)


def test_source_velocities_refuses_bad_times():
    with pytest.raises(ValueError, match="strictly increasing"):
        reference.source_velocities(np.array([0.0, 0.0]), np.zeros((2, 3)), np.tile([1.0, 0, 0, 0], (2, 1)),
                                    np.zeros((2, 29)), GMT)
    with pytest.raises(ValueError, match="odd number of taps"):
        ReferenceConventions("forward", 0, "zeros", "frame", "as_stored", "loop")
    assert math.isfinite(reference.QUAT_NORM_RANGE[0])
