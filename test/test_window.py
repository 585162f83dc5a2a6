"""Motion windows cut from clips: start, middle, end, past the end, and interpolation by hand."""
import warnings
from pathlib import Path

import numpy as np
import pytest

from gmt_ros.core.motion import MotionClip, MotionRepairWarning, load_clip, window_from_clip

MOTIONS = Path(__file__).resolve().parents[1] / "models" / "motions"


@pytest.fixture(scope="module")
def walk():
    with warnings.catch_warnings():
        warnings.simplefilter("error", MotionRepairWarning)
        return load_clip(MOTIONS / "gmt" / "walk_stand.npz")  # 23 joints, 29.93 fps, 7.38 s


@pytest.fixture(scope="module")
def twist():
    return load_clip(MOTIONS / "twist2" / "walk_003.npz")


def hand_interpolate(clip, t):
    """Independent reference: position/joints at clip time t by linear interpolation of raw frames."""
    x = t * clip.fps
    lo = int(np.floor(x))
    f = x - lo
    hi = min(lo + 1, clip.num_frames - 1)
    return ((1 - f) * clip.root_pos[lo] + f * clip.root_pos[hi],
            (1 - f) * clip.joint_pos[lo] + f * clip.joint_pos[hi])


def test_window_at_clip_start(walk):
    w = window_from_clip(walk, clip_time=0.0, start_time=1000.0)
    w.validate()
    assert len(w.frames) == 100 and w.dt == 0.02 and w.start_time == 1000.0
    assert w.end_time == pytest.approx(1000.0 + 99 * 0.02)
    assert w.clip_name == "walk_stand" and w.clip_time == 0.0
    np.testing.assert_array_equal(w.joint_mask, walk.joint_mask)
    assert w.joint_mask.sum() == 23 and not w.joint_mask[[19, 20, 21, 26, 27, 28]].any()
    np.testing.assert_allclose(w.frames.root_pos[0], walk.root_pos[0])
    np.testing.assert_allclose(w.frames.joint_vel[0], walk.joint_vel[0])
    for i in (1, 37, 99):
        pos, joints = hand_interpolate(walk, i * 0.02)
        np.testing.assert_allclose(w.frames.root_pos[i], pos, atol=1e-12)
        np.testing.assert_allclose(w.frames.joint_pos[i], joints, atol=1e-12)


def test_window_in_the_middle_follows_the_consumer_clock(twist):
    clip_time, start = 5.013, 42.5
    w = window_from_clip(twist, clip_time=clip_time, start_time=start, n=50, dt=0.05)
    w.validate()
    for i in (0, 7, 49):
        pos, joints = hand_interpolate(twist, clip_time + i * 0.05)
        np.testing.assert_allclose(w.frames.root_pos[i], pos, atol=1e-12)
        np.testing.assert_allclose(w.frames.joint_pos[i], joints, atol=1e-12)
    # the window, sampled on the consumer's clock, gives the clip at the matching clip time
    got = w.sample([start + 0.1, start + 0.125])  # window frame 2, and halfway to frame 3
    want = twist.sample([clip_time + 0.1, clip_time + 0.125])
    np.testing.assert_allclose(got.joint_pos[0], want.joint_pos[0], atol=1e-9)
    # between window frames the window interpolates its own frames, close to the clip
    np.testing.assert_allclose(got.root_pos[1], want.root_pos[1], atol=2e-3)
    assert np.abs(w.frames.joint_vel).max() > 0.1  # walking: velocities are really there


def test_window_running_past_the_clip_end(walk):
    start_clip = walk.duration - 0.5
    w = window_from_clip(walk, clip_time=start_clip, start_time=0.0)
    w.validate()
    times = start_clip + np.arange(100) * 0.02
    past = times > walk.duration
    assert past.sum() == 74
    np.testing.assert_allclose(w.frames.root_pos[past], np.tile(walk.root_pos[-1], (past.sum(), 1)))
    np.testing.assert_allclose(w.frames.root_quat[past], np.tile(walk.root_quat[-1], (past.sum(), 1)))
    np.testing.assert_allclose(w.frames.joint_pos[past], np.tile(walk.joint_pos[-1], (past.sum(), 1)))
    for name in ("root_lin_vel", "root_ang_vel", "joint_vel"):
        assert not getattr(w.frames, name)[past].any()
    assert np.abs(w.frames.joint_vel[~past]).max() > 0


def test_window_starting_after_the_end(twist):
    w = window_from_clip(twist, clip_time=twist.duration + 3.0, start_time=7.0, n=20)
    w.validate()
    np.testing.assert_allclose(w.frames.root_pos, np.tile(twist.root_pos[-1], (20, 1)))
    np.testing.assert_allclose(w.frames.joint_pos, np.tile(twist.joint_pos[-1], (20, 1)))
    assert not w.frames.root_lin_vel.any() and not w.frames.joint_vel.any() and not w.frames.root_ang_vel.any()


def test_window_on_a_two_frame_rotation_clip():
    # 2 frames 0.1 s apart, turning 1 rad about z: the window frame halfway is the 0.5 rad turn.
    clip = MotionClip(name="turn", fps=10.0, root_pos=np.array([[0.0, 0, 0.8], [0.2, 0, 0.8]]),
                      root_quat=np.array([[1.0, 0, 0, 0], [np.cos(0.5), 0, 0, np.sin(0.5)]]),
                      joint_pos=np.zeros((2, 29)), joint_mask=np.ones(29, dtype=bool))
    w = window_from_clip(clip, clip_time=0.0, start_time=0.0, n=6, dt=0.025)
    np.testing.assert_allclose(w.frames.root_quat[2], [np.cos(0.25), 0, 0, np.sin(0.25)], atol=1e-12)
    np.testing.assert_allclose(w.frames.root_quat[1], [np.cos(0.125), 0, 0, np.sin(0.125)], atol=1e-12)
    np.testing.assert_allclose(w.frames.root_pos[3], [0.15, 0, 0.8], atol=1e-12)
    np.testing.assert_allclose(w.frames.root_lin_vel[:5], np.tile([2.0, 0, 0], (5, 1)), atol=1e-9)
    np.testing.assert_allclose(w.frames.root_ang_vel[:4], np.tile([0, 0, 10.0], (4, 1)), atol=1e-9)
    assert not w.frames.root_lin_vel[5].any()  # 0.1 s is the last frame (still moving); 0.125 s is past it


@pytest.mark.parametrize("kwargs,message", [
    ({"n": 1}, "n must be an integer >= 2"),
    ({"n": 2.5}, "n must be an integer >= 2"),
    ({"dt": 0.0}, "dt must be positive"),
    ({"dt": float("nan")}, "dt must be positive"),
    ({"clip_time": float("inf")}, "must be finite"),
])
def test_window_argument_errors(walk, kwargs, message):
    args = {"clip_time": 0.0, "start_time": 0.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        window_from_clip(walk, **args)
