"""Motion clips: loading the real shipped clips, validation, glitch repair, velocities, .npz format."""
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from gmt_ros.core import g1, paths
from gmt_ros.core.clip_library import list_clips, load_named_clip, resolve_clip
from gmt_ros.core.motion import MotionClip, MotionRepairWarning, convert_main, load_clip, save_clip
from gmt_ros.core.safe_pickle import UnsafePickleError, load_pickled_dict

ASSETS = Path("/work/shared/assets/motions")
GMT = ["airkick_stand", "basic_walk", "crouchwalk_stand", "dance_waltz", "squat", "walk_stand"]
TWIST2 = [f"walk_00{i}" for i in range(1, 8)]
# Frames the loader drops at the start of each clip; every other clip must come through untouched.
EXPECTED_LEADING_DROPS = {"walk_001": 1, "walk_002": 1, "walk_004": 2, "walk_005": 1, "walk_006": 1, "walk_007": 1}
# Hand-written GMT 23-joint order -> G1 slot (legs 0-11, waist 12-14, left arm 15-18, right arm 22-25).
GMT23_TO_SLOT = list(range(0, 19)) + [22, 23, 24, 25]
WRISTS = [19, 20, 21, 26, 27, 28]


def load_quiet(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MotionRepairWarning)
        return load_clip(path)


@pytest.fixture(scope="module")
def shipped():
    clips = {}
    for name in GMT:
        clips[name] = (load_quiet(ASSETS / "gmt" / f"{name}.pkl"), load_pickled_dict(ASSETS / "gmt" / f"{name}.pkl"))
    for name in TWIST2:
        clips[name] = (load_quiet(ASSETS / "twist2" / f"{name}.pkl"), load_pickled_dict(ASSETS / "twist2" / f"{name}.pkl"))
    return clips


def write_pkl(path, **data):
    path.write_bytes(pickle.dumps(data))
    return path


def synthetic(n=60, joints=29, **overrides):
    """A plausible GMT/TWIST2-style clip dict at 30 fps (x, y, z, w quaternions)."""
    t = np.arange(n) / 30.0
    data = {"fps": 30.0,
            "root_pos": np.stack([0.3 * t, np.zeros(n), np.full(n, 0.78)], axis=1),
            "root_rot": np.tile([0.0, 0.0, 0.0, 1.0], (n, 1)),
            "dof_pos": np.tile(np.linspace(-0.3, 0.3, joints), (n, 1)) + 0.2 * np.sin(t)[:, None]}
    data.update(overrides)
    return data


# ----------------------------------------------------------------------------- shipped clips

def test_every_shipped_clip_loads_with_known_facts(shipped):
    for name, (clip, raw) in shipped.items():
        dropped = EXPECTED_LEADING_DROPS.get(name, 0)
        assert clip.num_frames == len(raw["root_pos"]) - dropped, name
        assert clip.fps == pytest.approx(float(raw["fps"]))
        assert clip.duration == pytest.approx((clip.num_frames - 1) / clip.fps)
        np.testing.assert_allclose(np.linalg.norm(clip.root_quat, axis=1), 1.0, atol=1e-12)
        assert np.all(clip.root_quat[:, 0] >= 0)
        np.testing.assert_allclose(clip.root_pos, raw["root_pos"][dropped:], atol=1e-7)
        # x, y, z, w -> w, x, y, z, normalised (GMT stores |q| 0.95-0.99), sign up to hemisphere
        q = np.asarray(raw["root_rot"][dropped:], dtype=np.float64)
        q = q[:, [3, 0, 1, 2]] / np.linalg.norm(q, axis=1, keepdims=True)
        np.testing.assert_allclose(np.abs(np.sum(q * clip.root_quat, axis=1)), 1.0, atol=1e-9)
        # ... and as stored, bit for bit (float32 pickles) in w, x, y, z order
        np.testing.assert_array_equal(clip.root_quat_stored, np.asarray(raw["root_rot"][dropped:])[:, [3, 0, 1, 2]])
        assert bool(clip.notes) == (dropped > 0), (name, clip.notes)
        for field in ("root_lin_vel", "root_ang_vel", "joint_vel"):
            assert np.all(np.isfinite(getattr(clip, field)))


def test_gmt_clips_are_23_joints_with_wrists_zero(shipped):
    for name in GMT:
        clip, raw = shipped[name]
        assert clip.num_joints == 23
        assert not clip.joint_mask[WRISTS].any() and clip.joint_mask[GMT23_TO_SLOT].all()
        assert np.all(clip.joint_pos[:, WRISTS] == 0.0) and np.all(clip.joint_vel[:, WRISTS] == 0.0)
        np.testing.assert_allclose(clip.joint_pos[:, GMT23_TO_SLOT], raw["dof_pos"], atol=1e-7)
    # a spot check by name: GMT index 3 is the left knee, index 19 the right shoulder pitch
    clip, raw = shipped["squat"]
    np.testing.assert_allclose(clip.joint_pos[:, g1.SLOT_OF["left_knee_joint"]], raw["dof_pos"][:, 3], atol=1e-7)
    np.testing.assert_allclose(clip.joint_pos[:, g1.SLOT_OF["right_shoulder_pitch_joint"]], raw["dof_pos"][:, 19], atol=1e-7)


def test_twist2_clips_are_29_joints(shipped):
    for name in TWIST2:
        clip, raw = shipped[name]
        assert clip.num_joints == 29 and clip.joint_mask.all()
        np.testing.assert_allclose(clip.joint_pos, raw["dof_pos"][EXPECTED_LEADING_DROPS.get(name, 0):])


def test_walk_004_corrupt_start_is_dropped(shipped):
    clip, raw = shipped["walk_004"]
    assert raw["root_pos"][0, 2] == pytest.approx(1.827, abs=1e-3)
    assert clip.root_pos[0, 2] == pytest.approx(0.79, abs=0.01)
    assert clip.root_pos[:, 2].max() < 0.9
    assert re.search(r"dropped leading frames 0-1 .*root 95\.5 m/s.*clip time 0 is input frame 2", clip.notes[0])
    # the policy-facing velocity carries no trace of the 95 m/s jump
    assert np.linalg.norm(clip.root_lin_vel, axis=1).max() < 2.0
    with pytest.warns(MotionRepairWarning, match=r"clip 'walk_004': dropped leading frames 0-1"):
        load_clip(ASSETS / "twist2" / "walk_004.pkl")


def test_deep_squats_and_fast_kicks_are_not_flagged(shipped):
    assert shipped["walk_006"][0].root_pos[:, 2].min() == pytest.approx(0.418, abs=0.002)
    assert shipped["crouchwalk_stand"][0].root_pos[:, 2].min() == pytest.approx(0.425, abs=0.002)
    assert shipped["squat"][0].root_pos[:, 2].min() == pytest.approx(0.52, abs=0.01)
    for name in ("squat", "crouchwalk_stand", "airkick_stand", "walk_003"):
        assert shipped[name][0].notes == []
    # walk_006 keeps everything after its first frame: no interior frame was touched
    clip, raw = shipped["walk_006"]
    np.testing.assert_array_equal(clip.joint_pos, raw["dof_pos"][1:])


def test_converted_library_matches_the_pickles(shipped):
    clips = list_clips()
    expected = {f"gmt/{n}" for n in GMT} | {f"twist2/{n}" for n in TWIST2}
    assert set(clips) == expected
    motions = paths.motions_dir()
    assert (motions / "gmt" / "LICENSE.gmt").read_text() == (ASSETS / "gmt" / "LICENSE.gmt").read_text()
    assert (motions / "twist2" / "LICENSE.twist2").read_text() == (ASSETS / "twist2" / "LICENSE.twist2").read_text()
    provenance = (motions / "PROVENANCE.md").read_text()
    total = 0
    for key, path in clips.items():
        assert path.suffix == ".npz" and path.stat().st_size < 200_000
        total += path.stat().st_size
        with warnings.catch_warnings():
            warnings.simplefilter("error", MotionRepairWarning)  # already repaired: nothing new
            npz = load_clip(path)
        pkl = shipped[npz.name][0]
        assert key.endswith(npz.name) and f"| {npz.name} |" in provenance
        assert npz.notes == pkl.notes and npz.num_frames == pkl.num_frames
        assert npz.fps == pkl.fps
        np.testing.assert_allclose(npz.root_pos, pkl.root_pos, atol=1e-6)
        np.testing.assert_allclose(npz.joint_pos, pkl.joint_pos, atol=1e-6)
        np.testing.assert_allclose(npz.root_quat, pkl.root_quat, atol=1e-6)
        np.testing.assert_array_equal(npz.joint_mask, pkl.joint_mask)
        assert "sha256" in npz.source
    assert total < 1_000_000


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("overrides,message", [
    ({"dof_pos": np.zeros((60, 25))}, r"dof_pos has 25 joints; expected 23 .* or 29"),
    ({"fps": 0.0}, "fps must be positive"),
    ({"fps": float("nan")}, "fps must be positive and finite"),
    ({"fps": "30"}, "fps must be one number"),
    ({"root_pos": np.zeros((60, 2))}, r"root_pos has shape \(60, 2\), expected \(T, 3\)"),
    ({"root_rot": np.tile([0, 0, 0, 1.0], (59, 1))}, "root_rot has 59 frames but root_pos has 60"),
    ({"root_rot": np.tile([0.1, 0.2, 0.3], (60, 1))}, r"root_rot has shape \(60, 3\)"),
    ({"root_rot": np.tile([0.3, 0.0, 1.2, 0.0], (60, 1))}, "do not look like|expected quaternions"),
    ({"root_rot": np.zeros((60, 4))}, "root_rot norms span"),
    ({"root_pos": np.full((60, 3), np.nan)}, r"root_pos contains NaN or inf \(frames \[0, 1"),
    ({"dof_pos": np.array([["a"] * 29] * 60)}, "dof_pos must be numeric"),
])
def test_bad_pickled_clips_are_refused(tmp_path, overrides, message):
    path = write_pkl(tmp_path / "bad.pkl", **synthetic(**overrides))
    with pytest.raises(ValueError, match=message):
        load_clip(path)


def test_structural_errors(tmp_path):
    data = synthetic()
    del data["root_rot"]
    with pytest.raises(ValueError, match=r"missing keys \['root_rot'\]"):
        load_clip(write_pkl(tmp_path / "nokey.pkl", **data))
    one = synthetic(n=1)
    with pytest.raises(ValueError, match="at least 2 frames, got 1"):
        load_clip(write_pkl(tmp_path / "one.pkl", **one))
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="expected a pickled dict of arrays, got a list"):
        load_clip(tmp_path / "list.pkl")
    (tmp_path / "clip.bvh").write_text("HIERARCHY")
    with pytest.raises(ValueError, match=r"unsupported format '\.bvh'"):
        load_clip(tmp_path / "clip.bvh")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_clip(tmp_path / "missing.pkl")


def test_unknown_keys_are_noted_not_hidden(tmp_path):
    clip = load_clip(write_pkl(tmp_path / "extra.pkl", **synthetic(), contact_mask=np.zeros((60, 2))))
    assert clip.notes == ["ignored unknown keys ['contact_mask']"]


def test_malicious_clip_does_not_run(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return os.system, (f"touch {tmp_path / 'pwned'}",)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({**synthetic(), "fps": Evil()}))
    with pytest.raises(UnsafePickleError, match=r"refusing to load clip 'evil'.*references posix\.system"):
        load_clip(path)
    assert not (tmp_path / "pwned").exists()


def test_clip_constructor_checks():
    base = dict(name="c", fps=30.0, root_pos=np.zeros((3, 3)), root_quat=np.tile([1.0, 0, 0, 0], (3, 1)),
                joint_pos=np.zeros((3, 29)), joint_mask=np.ones(29, dtype=bool))
    MotionClip(**base)
    # quaternions are kept as stored (GMT's pickles: |q| 0.947-0.997), root_quat is their unit copy
    stored = MotionClip(**{**base, "root_quat": np.tile([0.9, 0, 0, 0], (3, 1))})
    np.testing.assert_array_equal(stored.root_quat_stored, np.tile([0.9, 0, 0, 0], (3, 1)))
    np.testing.assert_array_equal(stored.root_quat, np.tile([1.0, 0, 0, 0], (3, 1)))
    with pytest.raises(ValueError, match=r"root_quat norms span \[0.700, 0.700\]"):
        MotionClip(**{**base, "root_quat": np.tile([0.7, 0, 0, 0], (3, 1))})
    mask = np.ones(29, dtype=bool)
    mask[WRISTS] = False
    with pytest.raises(ValueError, match="outside joint_mask must be 0"):
        MotionClip(**{**base, "joint_pos": np.ones((3, 29)), "joint_mask": mask})
    with pytest.raises(ValueError, match="joint_mask must be a"):
        MotionClip(**{**base, "joint_mask": np.ones(29)})
    clip = MotionClip(**base)
    with pytest.raises(ValueError, match="read-only"):
        clip.root_pos[0, 0] = 1.0


# ----------------------------------------------------------------------------- glitch repair

def test_interior_single_frame_glitch_is_interpolated(tmp_path):
    data = synthetic(n=90)
    clean = data["dof_pos"].copy()
    data["dof_pos"] = clean.copy()
    data["dof_pos"][40, 5] += 1.5  # one frame 1.5 rad off: 45 rad/s in and out
    data["root_pos"] = data["root_pos"].copy()
    data["root_pos"][40, 2] += 0.6
    with pytest.warns(MotionRepairWarning, match=r"clip 'spike': interpolated frame 40 between frames 39 and 41"):
        clip = load_clip(write_pkl(tmp_path / "spike.pkl", **data))
    assert clip.num_frames == 90
    np.testing.assert_allclose(clip.joint_pos[40], 0.5 * (clean[39] + clean[41]))
    assert clip.root_pos[40, 2] == pytest.approx(0.78)
    np.testing.assert_array_equal(clip.joint_pos[:40], clean[:40])


def test_two_frame_interior_glitch_with_rotation_is_slerped(tmp_path):
    data = synthetic(n=90)
    yaw = np.linspace(0, 1.0, 90)
    rot = np.stack([np.zeros(90), np.zeros(90), np.sin(yaw / 2), np.cos(yaw / 2)], axis=1)  # x,y,z,w
    rot[50:52] = [1.0, 0.0, 0.0, 0.0]  # flipped upside down for two frames
    data["root_rot"] = rot
    with pytest.warns(MotionRepairWarning, match="interpolated frames 50-51 between frames 49 and 52"):
        clip = load_clip(write_pkl(tmp_path / "flip.pkl", **data))
    # slerp between yaw[49] and yaw[52] at 1/3 and 2/3 gives these yaws exactly (linear in yaw)
    for k in (50, 51):
        expected = [np.cos(yaw[k] / 2), 0.0, 0.0, np.sin(yaw[k] / 2)]
        np.testing.assert_allclose(clip.root_quat[k], expected, atol=1e-12)


def test_trailing_glitch_is_trimmed(tmp_path):
    data = synthetic(n=60)
    data["root_pos"] = data["root_pos"].copy()
    data["root_pos"][-1] = [5.0, 5.0, 0.0]
    with pytest.warns(MotionRepairWarning, match="dropped trailing frame 59 of 60"):
        clip = load_clip(write_pkl(tmp_path / "tail.pkl", **data))
    assert clip.num_frames == 59


def test_cut_between_two_long_stretches_is_refused(tmp_path):
    data = synthetic(n=60)
    data["root_pos"] = data["root_pos"].copy()
    data["root_pos"][30:, 0] += 2.0  # teleport: 60 m/s for one step, then normal again
    with pytest.raises(ValueError, match=r"jump between frames 29 and 30 \(jumps of root 6\d\.\d m/s\).*cut or teleport"):
        load_clip(write_pkl(tmp_path / "cut.pkl", **data))


def test_clip_of_noise_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    data = synthetic(n=40, dof_pos=rng.uniform(-2, 2, (40, 29)))
    with pytest.raises(ValueError, match="no stretch of more than 5 frames without one"):
        load_clip(write_pkl(tmp_path / "noise.pkl", **data))


# ----------------------------------------------------------------------------- velocities

def test_constant_velocity_clip_has_exact_velocities(tmp_path):
    fps, n = 30.0, 90
    t = np.arange(n) / fps
    v, yaw_rate, q_rate = np.array([0.4, -0.2, 0.05]), 0.3, np.linspace(-1, 1, 29)
    yaw = yaw_rate * t
    tilt = 0.5  # constant roll, so a body-frame rate would differ from the world-frame one
    cz, sz, cx, sx = np.cos(yaw / 2), np.sin(yaw / 2), np.cos(tilt / 2), np.sin(tilt / 2)
    q_world = np.stack([cz * cx, cz * sx, sz * sx, sz * cx], axis=1)  # Rz(yaw) * Rx(tilt), w,x,y,z
    clip = MotionClip(name="const", fps=fps, root_pos=np.array([0, 0, 0.8]) + t[:, None] * v, root_quat=q_world,
                      joint_pos=t[:, None] * q_rate, joint_mask=np.ones(29, dtype=bool))
    # nearest padding keeps constant velocities exact up to the very ends
    np.testing.assert_allclose(clip.root_lin_vel, np.tile(v, (n, 1)), atol=1e-9)
    np.testing.assert_allclose(clip.joint_vel, np.tile(q_rate, (n, 1)), atol=1e-9)
    np.testing.assert_allclose(clip.root_ang_vel, np.tile([0, 0, yaw_rate], (n, 1)), atol=1e-9)


def test_sinusoid_velocity_matches_box_filtered_central_difference():
    fps, n, omega, amp = 30.0, 200, 6.0, 0.5
    t = np.arange(n) / fps
    joint = np.zeros((n, 29))
    joint[:, 3] = amp * np.sin(omega * t)
    clip = MotionClip(name="sine", fps=fps, root_pos=np.zeros((n, 3)), root_quat=np.tile([1.0, 0, 0, 0], (n, 1)),
                      joint_pos=joint, joint_mask=np.ones(29, dtype=bool))
    h = omega / fps
    central = np.sin(h) / h  # central difference gain on a sinusoid
    box = np.sin(19 * h / 2) / (19 * np.sin(h / 2))  # 19-tap moving-average gain
    expected = amp * omega * np.cos(omega * t) * central * box
    inner = slice(10, n - 10)
    np.testing.assert_allclose(clip.joint_vel[inner, 3], expected[inner], atol=1e-9)
    assert box == pytest.approx(0.50, abs=0.01)  # 19 taps really halve a 1 Hz swing (GMT's convention)


# ----------------------------------------------------------------------------- sampling

def two_frame_clip(fps=10.0):
    half = 0.5  # 1 rad about z between the two frames
    return MotionClip(name="two", fps=fps, root_pos=np.array([[0.0, 0, 0.8], [1.0, 2.0, 0.6]]),
                      root_quat=np.array([[1.0, 0, 0, 0], [np.cos(half), 0, 0, np.sin(half)]]),
                      joint_pos=np.stack([np.zeros(29), np.arange(29) * 0.1]), joint_mask=np.ones(29, dtype=bool))


def test_sample_interpolates_and_slerps():
    clip = two_frame_clip()
    assert clip.duration == pytest.approx(0.1)
    f = clip.sample([0.0, 0.025, 0.05, 0.1])
    np.testing.assert_allclose(f.root_pos[2], [0.5, 1.0, 0.7])
    np.testing.assert_allclose(f.joint_pos[1], np.arange(29) * 0.1 * 0.25)
    np.testing.assert_allclose(f.root_quat[2], [np.cos(0.25), 0, 0, np.sin(0.25)], atol=1e-12)
    np.testing.assert_allclose(f.root_quat[1], [np.cos(0.125), 0, 0, np.sin(0.125)], atol=1e-12)
    np.testing.assert_allclose(f.root_ang_vel[2], [0, 0, 10.0], atol=1e-9)  # 1 rad in 0.1 s
    np.testing.assert_allclose(f.root_lin_vel[2], [10.0, 20.0, -2.0], atol=1e-9)


def test_sample_outside_the_clip_holds_the_pose_with_zero_velocity():
    clip = two_frame_clip()
    f = clip.sample([-1.0, 0.1, 0.1000001, 5.0])
    np.testing.assert_allclose(f.root_pos[0], clip.root_pos[0])
    for k in (2, 3):
        np.testing.assert_allclose(f.root_pos[k], clip.root_pos[-1])
        np.testing.assert_allclose(f.root_quat[k], clip.root_quat[-1])
        assert not f.root_lin_vel[k].any() and not f.root_ang_vel[k].any() and not f.joint_vel[k].any()
    assert not f.joint_vel[0].any()
    np.testing.assert_allclose(f.root_lin_vel[1], clip.root_lin_vel[-1])  # exactly at the end: still moving
    with pytest.raises(ValueError, match="finite"):
        clip.sample([np.nan])


# ----------------------------------------------------------------------------- project format

def test_save_load_round_trip_and_determinism(tmp_path, shipped):
    clip = shipped["walk_004"][0]
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    save_clip(clip, a)
    save_clip(clip, b)
    assert a.read_bytes() == b.read_bytes()
    back = load_clip(a)
    assert back.name == "walk_004" and back.notes == clip.notes and back.source == clip.source
    np.testing.assert_allclose(back.root_pos, clip.root_pos, atol=1e-6)
    with np.load(a, allow_pickle=False) as npz:
        assert npz["root_pos"].dtype == np.float32 and int(npz["schema_version"]) == 2
        # schema 2 keeps the quaternions as the source stored them
        np.testing.assert_array_equal(npz["root_quat_wxyz"], clip.root_quat_stored.astype(np.float32))
        assert tuple(npz["joint_names"]) == g1.JOINT_NAMES
    with pytest.raises(ValueError, match=r"must end in .npz"):
        save_clip(clip, tmp_path / "x.pkl")


def rewrite_npz(src, dst, **changes):
    with np.load(src, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    np.savez(dst, **data)
    return dst


def test_npz_errors(tmp_path, shipped):
    good = save_clip(shipped["walk_stand"][0], tmp_path / "good.npz")
    names = list(g1.JOINT_NAMES)
    names[3], names[9] = names[9], names[3]
    cases = [
        ({"schema_version": np.array(3)}, r"unsupported schema_version .*3.*reads 1, 2"),
        ({"joint_names": np.array(names)}, r"not the G1 motor-slot order \(slot 3 is 'right_knee_joint', expected 'left_knee_joint'\)"),
        ({"joint_names": np.array(names[:23])}, "got 23 names"),
        ({"root_quat_wxyz": None}, r"missing keys \['root_quat_wxyz'\]"),
        ({"velocity": np.zeros(3)}, r"unknown keys \['velocity'\]"),
        ({"joint_mask": np.ones(29)}, "joint_mask must be bool"),
        ({"fps": np.array(-30.0)}, "fps must be positive"),
        ({"root_quat_wxyz": np.zeros((222, 4))}, r"root_quat_wxyz norms span \[0.000, 0.000\]"),
        ({"schema_version": np.array(1), "root_quat_wxyz": np.tile([0.95, 0, 0, 0], (222, 1))},
         "root_quat_wxyz must be unit length in schema 1"),
        ({"joint_pos": np.zeros((222, 23))}, r"joint_pos has shape \(222, 23\)"),
    ]
    for i, (changes, message) in enumerate(cases):
        with pytest.raises(ValueError, match=message):
            load_clip(rewrite_npz(good, tmp_path / f"bad{i}.npz", **changes))
    # object arrays need pickle: refused by allow_pickle=False
    np.savez(tmp_path / "obj.npz", schema_version=np.array(1), name=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"not a readable project .npz clip"):
        load_clip(tmp_path / "obj.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"not a readable project .npz clip"):
        load_clip(tmp_path / "text.npz")


def test_convert_main(tmp_path, capsys):
    out = tmp_path / "sub" / "w4.npz"
    assert convert_main([str(ASSETS / "twist2" / "walk_004.pkl"), str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("walk_004: 378 frames at 29.76 fps, 12.67 s, 29 joints; repairs: dropped leading frames 0-1")
    assert line.endswith(f"-> {out}") and "\n" not in line
    assert load_clip(out).num_frames == 378
    assert convert_main([str(ASSETS / "gmt" / "squat.pkl"), str(tmp_path / "s.npz")]) == 0
    assert "304 frames at 60.00 fps, 5.05 s, 23 joints (wrists zero); repairs: none" in capsys.readouterr().out
    bad = write_pkl(tmp_path / "bad.pkl", **synthetic(dof_pos=np.zeros((60, 12))))
    assert convert_main([str(bad), str(tmp_path / "bad.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gmt-ros convert: error:") and "dof_pos has 12 joints" in err
    assert not (tmp_path / "bad.npz").exists()
    assert convert_main([str(ASSETS / "gmt" / "squat.pkl"), str(tmp_path / "s.txt")]) == 1
    assert "must end in .npz" in capsys.readouterr().err


# ----------------------------------------------------------------------------- library

def test_library_names(tmp_path):
    motions = paths.motions_dir()
    assert resolve_clip("walk_stand") == motions / "gmt" / "walk_stand.npz"
    assert resolve_clip("twist2/walk_004") == motions / "twist2" / "walk_004.npz"
    direct = ASSETS / "gmt" / "squat.pkl"
    assert resolve_clip(str(direct)) == direct
    assert load_named_clip("walk_004").root_pos[0, 2] == pytest.approx(0.79, abs=0.01)
    with pytest.raises(ValueError, match=r"no motion clip named 'moonwalk'; available: gmt/airkick_stand, .*twist2/walk_007"):
        resolve_clip("moonwalk")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_clip(str(tmp_path / "nothere.npz"))
    extra = tmp_path / "mine"
    (extra / "demo").mkdir(parents=True)
    save_clip(load_clip(motions / "gmt" / "squat.npz"), extra / "demo" / "walk_stand.npz")
    save_clip(load_clip(motions / "gmt" / "squat.npz"), extra / "hop.npz")
    assert list_clips([extra])["demo/walk_stand"] == extra / "demo" / "walk_stand.npz"
    assert resolve_clip("hop", [extra]) == extra / "hop.npz"
    with pytest.raises(ValueError, match=r"'walk_stand' is ambiguous: it matches demo/walk_stand, gmt/walk_stand"):
        resolve_clip("walk_stand", [extra])
    with pytest.raises(ValueError, match=r"two motion clips are both named 'gmt/airkick_stand': .*airkick_stand.npz and .*airkick_stand.pkl"):
        list_clips([ASSETS])
    with pytest.raises(FileNotFoundError, match=r"directory .* does not exist"):
        list_clips([tmp_path / "none"])


def test_long_broken_start_is_refused(tmp_path):
    data = synthetic(n=60)
    data["root_pos"] = data["root_pos"].copy()
    data["root_pos"][0:8:2, 2] += 0.5  # frames 0, 2, 4, 6 up, 1, 3, 5 down: frames 0-6 broken
    with pytest.raises(ValueError, match="7 leading frames are broken up by jumps; at most 5"):
        load_clip(write_pkl(tmp_path / "head.pkl", **data))
