"""Per-tick traces, per-run PNG plots and the offscreen MP4 render, on the real policy and model."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gmt_ros.core import g1
from sim2sim import plots
from sim2sim.evaluate import EpisodeTrace, run_episode

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# `gmt-ros` with the evaluate tool registered, in a fresh process (OpenGL binds once per process).
GMT_ROS = [sys.executable, "-c",
           ("import sys, gmt_ros.cli as c\n"
            "if 'evaluate' not in c.TOOL_MODULES: c.TOOL_MODULES += ('evaluate',)\n"
            "sys.exit(c.main(sys.argv[1:]))")]


@pytest.fixture(scope="module")
def traced(contract, policy, squat):
    return run_episode(contract, squat, seconds=1.0, policy=policy, trace=True)


def test_trace_rows_are_the_policy_ticks_and_agree_with_the_episode(traced, squat, contract, policy):
    tr = traced.trace
    assert len(tr) == 50 and traced.policy_ticks == 50
    np.testing.assert_allclose(tr.time_s, np.arange(50) * 0.02, atol=1e-12)
    assert tr.upright.all()
    # Tick 0 is the start pose: the robot stands exactly in the clip's first frame.
    first = squat.sample(0.0)
    np.testing.assert_allclose(tr.joint_pos[0], first.joint_pos[0], atol=1e-12)
    np.testing.assert_allclose(tr.ref_joint_pos[0], first.joint_pos[0], atol=1e-12)
    assert tr.root_height_m[0] == pytest.approx(first.root_pos[0][2], abs=1e-12)
    np.testing.assert_allclose(tr.ref_joint_pos[25], squat.sample(0.5).joint_pos[0], atol=1e-12)
    # The episode's errors are the upright-time means of the per-tick errors.
    for key in ("e_mpjpe_rad", "e_mpkpe_mm", "e_vel_mps", "e_yaw_vel_radps"):
        assert traced.errors[key] == pytest.approx(float(np.mean(getattr(tr, key))), rel=1e-12)
    # Per-tick mpjpe recomputed by hand from the trace's joint columns (23 tracked joints).
    tracked = np.asarray(g1.GMT23_SLOTS)
    assert tr.joint_mask.sum() == 23 and tr.joint_mask[tracked].all()
    by_hand = np.mean(np.abs(tr.joint_pos[:, tracked] - tr.ref_joint_pos[:, tracked]), axis=1)
    np.testing.assert_allclose(tr.e_mpjpe_rad, by_hand, rtol=1e-12)
    # Applied torques respect the motor limits; the motors did work (not zero).
    assert np.all(np.abs(tr.joint_tau) <= tr.tau_limit + 1e-9)
    assert np.abs(tr.joint_tau[1:]).max() > 1.0
    # The trace is not in the JSON report, and recording it does not change the episode.
    report = traced.as_dict()
    assert "trace" not in report
    assert run_episode(contract, squat, seconds=1.0, policy=policy).as_dict() == report


def test_trace_round_trips_through_npz(traced, tmp_path):
    path = traced.trace.save_npz(tmp_path / "t.npz")
    back = EpisodeTrace.load_npz(path)
    assert back.joint_names == g1.JOINT_NAMES
    for key, value in traced.trace.__dict__.items():
        if key != "joint_names":
            np.testing.assert_array_equal(getattr(back, key), value)


def test_frame_hook_runs_at_its_rate_on_the_physics_clock_without_changing_the_episode(contract, policy, squat,
                                                                                       traced):
    times = []
    result = run_episode(contract, squat, seconds=1.0, policy=policy, frame_rate_hz=30.0,
                         frame_hook=lambda t, sim: times.append((t, sim.time)))
    assert len(times) == 30
    expected = np.round(np.arange(30) / 30.0, 3)  # whole 1 ms physics steps
    np.testing.assert_allclose([t for t, _ in times], expected, atol=1e-9)
    np.testing.assert_allclose([s for _, s in times], expected, atol=1e-9)  # the sim is at that time
    assert result.as_dict() == traced.as_dict()


def _assert_real_png(path, min_size):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 20_000
    with Image.open(path) as im:
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        pixels = np.asarray(im.convert("RGB"), dtype=np.int16)
    # Not blank: many colours, and a good share of the canvas is not white background.
    packed = (pixels[..., 0].astype(np.int32) << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    assert np.unique(packed).size > 50
    assert np.mean(np.any(pixels < 200, axis=2)) > 0.02


def test_plot_run_writes_four_real_pngs(traced, tmp_path):
    written = plots.plot_run(traced.trace, tmp_path / "run", title="squat test")
    assert [p.name for p in written] == list(plots.PLOT_FILES)
    for path in written:
        _assert_real_png(path, (800, 500))


def test_plot_joint_names_are_checked():
    assert plots.resolve_joint_names(["left_knee", "waist_yaw_joint"]) == ("left_knee_joint", "waist_yaw_joint")
    with pytest.raises(ValueError, match="unknown joint 'elbow'"):
        plots.resolve_joint_names(["elbow"])


def test_a_one_second_render_is_a_valid_h264_mp4(tmp_path):
    import imageio.v2 as iio

    out = tmp_path / "walk.mp4"
    report = tmp_path / "walk.json"
    proc = subprocess.run([*GMT_ROS, "render", "--motion", "twist2/walk_003", "--seconds", "1", "--dr", "gmt",
                           "--seed", "2", "--width", "320", "--height", "240", "--out", str(out),
                           "--json", str(report)],
                          check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "30 frames at 30 fps, 320x240" in proc.stderr
    assert json.loads(report.read_text())["randomization"]["seed"] == 2
    reader = iio.get_reader(str(out), "ffmpeg")
    meta = reader.get_meta_data()
    frames = [f for f in reader]
    reader.close()
    assert meta["codec"] == "h264" and meta["fps"] == pytest.approx(30.0) and meta["size"] == (320, 240)
    assert len(frames) == 30 and frames[0].shape == (240, 320, 3)
    for frame in (frames[0], frames[-1]):
        assert frame.reshape(-1, 3).std(axis=0).max() > 15  # not one colour
    # Things move: the last frame differs from the first (robot, ghost, clock caption).
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 0.5
    # The translucent ghost: clearly cyan pixels (blue high, green high, red low) are present.
    f = frames[15].astype(int)
    cyan = (f[..., 2] > 170) & (f[..., 1] > 130) & (f[..., 0] < 150)
    assert cyan.mean() > 0.002


@pytest.mark.parametrize("args, message", [
    (["--out", "x.avi"], "--out must name a .mp4 file"),
    (["--out", "x.mp4", "--dr", "nosuch"], "unknown randomization preset 'nosuch'"),
    (["--out", "x.mp4", "--width", "481"], "--width must be an even number"),
    (["--out", "x.mp4", "--seed", "-1"], "--seed must be >= 0"),
])
def test_render_bad_input(args, message, tmp_path):
    proc = subprocess.run([*GMT_ROS, "render", "--motion", "gmt/squat", *args], check=False, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_gl_backend_choice():
    from sim2sim import video

    with pytest.raises(ValueError, match="unknown GL backend 'vulkan'"):
        video.choose_gl_backend("vulkan")
