"""Parity of the GMT contract's 2154-input observation with GMT's own recipe.

The reference (``test/gmt_recipe.py``) is written from GMT's published deploy code
(zixuan417/humanoid-general-motion-tracking: ``sim2sim.py`` ``HumanoidEnv._get_mimic_obs`` and
``run``, ``utils/motion_lib.py`` ``MotionLib._load_motions`` / ``calc_motion_frame`` / ``smooth``,
``utils/torch_utils.py``) and reads GMT's ORIGINAL pickles (``test/data/gmt_pickles``, byte copies
whose sha256 PROVENANCE.md records). gmt_ros's side is its deployment path: the converted clip of
the library (``models/motions/gmt``), the ``gmt_student`` contract with its ``reference: gmt``
conventions, ``window_from_clip`` (the offline loop's window) or the motion player's windows through
the motion-target message, and the ``ObservationBuilder``. Every control step from 0 to 2.5 s past
the clip's end (so the look-ahead and then the time itself wrap, as GMT's loop does), with a
random robot state and a random action fed back as the next step's ``last_action``; every block
of the vector within 1e-4 of the reference, in float32.

Known numerical quirk of GMT's ``slerp``: for |sin(half angle)| < 0.001 it returns the midpoint
0.5 (q0 + q1) whatever the blend. With GMT's stored quaternions (|q| 0.947-0.997) the dot product
of two frames stays below 0.995, so it never fires (asserted below); with unit quaternions it fires
between nearly identical frames, where gmt_ros interpolates exactly: the roll/pitch it sees then
differ by at most half the angle between the two frames (bounded below, < 1e-3 rad).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import gmt_recipe
import numpy as np
import pytest

from gmt_ros.core import paths, rotations
from gmt_ros.core.clip_library import load_named_clip
from gmt_ros.core.contract import load_contract
from gmt_ros.core.motion import window_from_clip
from gmt_ros.core.observation import ObservationBuilder
from gmt_ros.core.playback import MotionPlayer
from gmt_ros.core.reference import parse_conventions
from gmt_ros.core.safe_pickle import load_pickled_dict
from gmt_ros.core.state import RobotState

PICKLES = Path(__file__).parent / "data" / "gmt_pickles"
CLIPS = ["airkick_stand", "basic_walk", "crouchwalk_stand", "dance_waltz", "squat", "walk_stand"]
# GMT's joint order (sim2sim.py dof_names) in G1 motor slots: legs 0-11, waist 12-14, left arm
# 15-18, right arm 22-25 (the wrists 19-21 and 26-28 are not GMT joints). Written by hand.
GMT_TO_SLOT = list(range(0, 19)) + [22, 23, 24, 25]
PAST_END_S = 2.5
TOLERANCE = 1e-4
# Blocks of the 2154 vector: 20 frames x (height, roll, pitch, lin vel 3, yaw rate, 23 joints),
# proprio (gyro 3, roll/pitch 2, q 23, dq 23, last action 23), 20 x proprio of history.
FRAME_COLUMNS = {"ref_root_height": slice(0, 1), "ref_root_roll_pitch": slice(1, 3), "ref_root_lin_vel": slice(3, 6),
                 "ref_root_yaw_rate": slice(6, 7), "ref_joint_pos": slice(7, 30)}
PROPRIO = {"base_ang_vel": slice(600, 603), "base_roll_pitch": slice(603, 605), "joint_pos_rel": slice(605, 628),
           "joint_vel": slice(628, 651), "last_action": slice(651, 674), "history": slice(674, 2154)}


def _gmt_pickle(name: str) -> dict:
    return load_pickled_dict(PICKLES / f"{name}.pkl", f"GMT clip {name}")


def _block_errors(ours: np.ndarray, ref: np.ndarray, tie_sides: list[np.ndarray] = ()) -> dict[str, float]:
    """Max |ours - ref| per block; ``tie_sides``: the reference's mimic block with a tie decided the
    other way (``gmt_recipe.GmtMotion.frame``): a frame row may match any of them."""
    diff = np.abs(ours.astype(np.float32) - ref)
    frames = diff[:600].reshape(20, 30)
    for side in tie_sides:
        other = np.abs(ours[:600].astype(np.float32) - side).reshape(20, 30)
        better = other.max(axis=1) < frames.max(axis=1)
        frames[better] = other[better]
    out = {name: float(frames[:, cols].max()) for name, cols in FRAME_COLUMNS.items()}
    out.update({name: float(diff[cols].max()) for name, cols in PROPRIO.items()})
    return out


class _RandomRobot:
    """Random robot states and actions, float32-representable (GMT reads float32 sensors)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def _f32(self, x):
        return np.asarray(x, np.float32).astype(np.float64)

    def state(self) -> tuple[RobotState, dict]:
        rng = self.rng
        q29 = self._f32(rng.uniform(-1.0, 1.0, 29))
        dq29 = self._f32(rng.normal(0.0, 2.0, 29))
        quat = rotations.from_rpy(rng.uniform([-0.5, -0.5, -np.pi], [0.5, 0.5, np.pi]))
        quat = self._f32(quat / np.linalg.norm(quat))
        gyro = self._f32(rng.normal(0.0, 1.0, 3))
        state = RobotState(joint_pos=q29, joint_vel=dq29, joint_tau=np.zeros(29), imu_quat=quat, imu_gyro=gyro,
                           imu_acc=np.array([0.0, 0.0, 9.81]), stamp=0.0)
        gmt = {"dof_pos": q29[GMT_TO_SLOT], "dof_vel": dq29[GMT_TO_SLOT], "imu_quat_wxyz": quat, "gyro": gyro}
        return state, gmt

    def action(self) -> np.ndarray:
        return self._f32(self.rng.normal(0.0, 1.5, 23))


@pytest.fixture(scope="module")
def contract():
    return load_contract("gmt_student")


def test_the_pickles_are_gmts_originals():
    recorded = dict(re.findall(r"\| (\w+) \| \d+ \| [\d.]+ \| [\d.]+ \| 23 \| `([0-9a-f]{64})` \|",
                               (paths.models_dir() / "motions" / "PROVENANCE.md").read_text()))
    assert sorted(recorded) == CLIPS
    for name in CLIPS:
        assert hashlib.sha256((PICKLES / f"{name}.pkl").read_bytes()).hexdigest() == recorded[name], name
    assert (PICKLES / "LICENSE.gmt").read_text() == (paths.models_dir() / "motions" / "gmt" / "LICENSE.gmt").read_text()


def test_contract_states_gmts_recipe(contract):
    r = contract.reference
    assert (r.velocity_difference, r.velocity_smoothing, r.smoothing_padding, r.velocity_sampling,
            r.quaternions, r.past_end) == ("forward", 19, "zeros", "frame", "as_stored", "loop")


@pytest.mark.parametrize("name", CLIPS)
def test_observation_matches_gmts_recipe_inside_at_the_ends_and_past_the_end(contract, name):
    motion = gmt_recipe.GmtMotion(_gmt_pickle(name))
    reference = gmt_recipe.GmtObservation(motion)
    clip = load_named_clip(f"gmt/{name}")
    builder = ObservationBuilder(contract)
    robot = _RandomRobot(seed=CLIPS.index(name))
    last_action = np.zeros(23)
    steps = int((clip.duration + PAST_END_S) / contract.control_dt)
    worst = {}
    where = {}
    for k in range(steps):
        now = k * contract.control_dt
        state, gmt = robot.state()
        window = window_from_clip(clip, clip_time=now, start_time=now, conventions=contract.reference)
        ours = builder.build(state, window, now, last_action)
        builder.commit()
        ties = motion.ties
        ref = reference.step(k, gmt["dof_pos"], gmt["dof_vel"], gmt["imu_quat_wxyz"], gmt["gyro"], last_action)
        assert ours.shape == ref.shape == (2154,)
        sides = [reference.mimic(k, tie) for tie in ("below", "above")] if motion.ties > ties else []
        region = "start" if k * contract.control_dt < 0.5 else (
            "past end" if now > clip.duration else ("end" if now > clip.duration - 2.0 else "inside"))
        for block, err in _block_errors(ours, ref, sides).items():
            if err > worst.get(block, -1.0):
                worst[block], where[block] = err, (k, region)
        last_action = robot.action()
    assert motion.shortcut_samples == 0, "GMT's slerp took a shortcut on its own stored quaternions"
    bad = {b: (f"{e:.2e}", where[b]) for b, e in worst.items() if not e <= TOLERANCE}
    assert not bad, f"{name}: blocks beyond {TOLERANCE} (max error, (step, region)): {bad}"


def test_player_windows_through_the_message_match_gmts_recipe(contract):
    """The motion player (after its blend-in, re-anchored in x, y and heading, which GMT's terms do
    not see) and the motion-target message carry the same reference: the mimic block matches."""
    from gmt_ros.nodes.window_codec import decode_window, encode_window

    name, blend_in = "dance_waltz", 1.0
    player = MotionPlayer({f"gmt/{name}": paths.models_dir() / "motions" / "gmt" / f"{name}.npz"},
                          blend_in_s=blend_in, conventions=contract.reference)
    start = 1000.0
    player.play(name, start)
    reference = gmt_recipe.GmtObservation(gmt_recipe.GmtMotion(_gmt_pickle(name)))
    builder = ObservationBuilder(contract)
    state, _ = _RandomRobot(0).state()
    dt = contract.control_dt
    worst = 0.0
    for k in range(0, int(6.0 / dt), 7):  # clip times 0 .. 6 s (the window then reaches 7.9 s of 8.06)
        now = start + blend_in + k * dt
        msg = encode_window(player.window(now, n=100, dt=dt))
        window = decode_window(msg, dt=dt, min_horizon_s=1.9, conventions=contract.reference)
        ours = builder.build(state, window, now, np.zeros(23))[:600].reshape(20, 30)
        ref = reference.mimic(k).reshape(20, 30)
        worst = max(worst, float(np.abs(ours.astype(np.float32) - ref).max()))
    assert worst <= TOLERANCE, f"player windows: max error {worst:.2e}"


def test_slerp_midpoint_quirk_is_bounded_with_unit_quaternions():
    """Normalise GMT's quaternions (a unit-quaternion variant of the recipe): GMT's slerp then takes
    a shortcut between nearly identical frames — the midpoint 0.5 (q0 + q1) where |sin(half
    angle)| < 0.001, or q0 itself where the float32 cosine rounds to 1 — whatever the blend;
    gmt_ros interpolates exactly. The roll/pitch the two give differ there by at most the angle
    between the two frames (< 0.002 rad), and agree elsewhere."""
    conventions = parse_conventions({"preset": "gmt", "quaternions": "normalized"})
    fired = 0
    for name in ("walk_stand", "squat"):
        data = _gmt_pickle(name)
        rot = np.asarray(data["root_rot"], np.float64)
        data = {**data, "root_rot": (rot / np.linalg.norm(rot, axis=1, keepdims=True)).astype(np.float32)}
        motion = gmt_recipe.GmtMotion(data)
        clip = load_named_clip(f"gmt/{name}")
        times = np.arange(0.0, clip.duration, 0.02 / 7)  # many blends between frames
        ref_quat = motion.frame(times)[1]
        ours = clip.sample(times, conventions).root_quat
        err = np.abs(rotations.to_rpy(ours)[:, :2] - np.stack(gmt_recipe.euler_from_quaternion(ref_quat), axis=1)).max(axis=1)
        # which samples took a shortcut, and the angle between their two frames (float64)
        q0, q1 = _neighbours(motion, times)
        cos32 = np.abs(np.sum(q0 * q1, axis=1, dtype=np.float32))
        shortcut = (np.sqrt(np.maximum(1 - cos32 * cos32, 0)) < 0.001) | (cos32 >= 1)
        u0 = q0 / np.linalg.norm(q0.astype(np.float64), axis=1, keepdims=True)
        u1 = q1 / np.linalg.norm(q1.astype(np.float64), axis=1, keepdims=True)
        between = 2.0 * np.arccos(np.minimum(np.abs(np.sum(u0 * u1, axis=1)), 1.0))
        fired += int(shortcut.sum())
        assert np.all(err[~shortcut] <= TOLERANCE), f"{name}: {err[~shortcut].max():.2e}"
        assert np.all(err[shortcut] <= between[shortcut] + 1e-5), name
        assert err[shortcut].max(initial=0.0) < 2e-3
    assert fired > 0, "the shortcut should fire between nearly identical unit frames of these clips"


def _neighbours(motion, times):
    """The two frames GMT blends at each time (``_calc_frame_blend``, float32)."""
    times = np.asarray(times, np.float32)
    phase = np.clip(times / motion.length, 0, 1)
    idx0 = (phase * np.float32(motion.num_frames - 1)).astype(np.int64)
    idx1 = np.minimum(idx0 + 1, motion.num_frames - 1)
    return motion.root_rot[idx0].astype(np.float64), motion.root_rot[idx1].astype(np.float64)


def test_twist2_contract_holds_past_the_end():
    """TWIST2's stated behaviour past the end: the last pose, zero velocity (its deploy server
    stops streaming at the end); GMT's: the clip again from its start."""
    clip = load_named_clip("twist2/walk_003")
    twist2 = load_contract("twist2_student").reference
    past = clip.sample([clip.duration + 0.5, clip.duration + 3.0], twist2)
    last = clip.sample([clip.duration], twist2)
    np.testing.assert_allclose(past.joint_pos, np.repeat(last.joint_pos, 2, axis=0))
    assert not np.any(past.joint_vel) and not np.any(past.root_lin_vel) and not np.any(past.root_ang_vel)
    gmt = load_contract("gmt_student").reference
    wrapped = clip.sample([clip.duration + 0.5], gmt)
    np.testing.assert_allclose(wrapped.joint_pos, clip.sample([0.5], gmt).joint_pos, atol=1e-9)
