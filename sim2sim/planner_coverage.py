"""What the planner can ask of a tracking policy: measurements behind docs/PLANNER.md.

    python -m sim2sim.planner_coverage ratios [--policy twist2_student]
    python -m sim2sim.planner_coverage sideways [--policy twist2_student]

``ratios``: every planner clip played straight through the offline loop (``sim2sim.evaluate``,
start in the clip's first frame, no randomisation): how much of the reference's walking
velocity the robot achieves, per axis, as the least-squares ratio achieved / reference over the
1 s averages where the reference moves faster than 0.2 m/s (0.2 rad/s), and the mean absolute
difference. A ratio below 1 means the policy walks that clip's gait slower than its root.

``sideways``: the only sidesteps in the library (twist2/walk_007, 0-5.5 s, 0.5-0.6 m/s left)
made slower in four ways, and the achieved sideways velocity of each: as recorded; the root's
velocity scaled by 0.4 (legs unchanged: what the planner's warp does); the whole clip played
2.5 times slower; stepping on the spot (twist2/walk_006, 7-13 s, turning removed) with a 0.2 m/s
sideways root velocity added.
"""
from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from gmt_ros.core import rotations
from gmt_ros.core.clip_library import load_named_clip
from gmt_ros.core.motion import MotionClip, MotionRepairWarning
from gmt_ros.core.planner_config import DEFAULT_CLIPS
from sim2sim.velocity_tracking import averaged_velocity


def _clip(name: str) -> MotionClip:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MotionRepairWarning)
        return load_named_clip(name)


def _robot_velocity(contract, clip: MotionClip):
    """(fell, centres, achieved (M, 3), reference (M, 3)) of the clip played in the offline loop."""
    from sim2sim.evaluate import run_episode

    rows = []
    result = run_episode(contract, clip, start="clip", frame_rate_hz=50.0,
                         frame_hook=lambda t, sim: rows.append((t, *[np.array(x) for x in sim.root_pose()])))
    t = np.array([r[0] for r in rows])
    centres, achieved = averaged_velocity(t, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    ref = clip.sample(t)
    _, reference = averaged_velocity(t, ref.root_pos, ref.root_quat)
    return result.fell, centres, achieved, reference


def ratios(contract) -> list[dict]:
    out = []
    for name in DEFAULT_CLIPS:
        fell, _, achieved, reference = _robot_velocity(contract, _clip(name))
        row = {"clip": name, "fell": fell}
        for i, axis in enumerate(("vx", "vy", "wz")):
            moving = np.abs(reference[:, i]) > 0.2
            row[f"{axis}_ratio"] = (round(float(achieved[moving, i] @ reference[moving, i] / (reference[moving, i] @ reference[moving, i])), 2)
                                    if moving.sum() >= 25 else None)
            row[f"{axis}_mae"] = round(float(np.abs(achieved[:, i] - reference[:, i]).mean()), 3)
        out.append(row)
    return out


def _reworked(clip: MotionClip, t0: float, t1: float, name: str, time_scale: float = 1.0,
              root_scale=(1.0, 1.0, 1.0), add=(0.0, 0.0, 0.0)) -> MotionClip:
    """Frames t0..t1 of ``clip``: played ``time_scale`` times slower, and/or with the root's
    heading-frame velocity scaled per axis (vx, vy, wz) plus ``add``; joints unchanged."""
    i0, i1 = int(t0 * clip.fps), int(t1 * clip.fps)
    pos, quat = np.array(clip.root_pos[i0:i1]), np.array(clip.root_quat[i0:i1])
    fps = clip.fps / time_scale
    yaw = np.unwrap(rotations.to_rpy(quat)[:, 2])
    d = np.diff(pos[:, :2], axis=0)
    h = yaw[:-1]
    fwd = (np.cos(h) * d[:, 0] + np.sin(h) * d[:, 1]) * root_scale[0] + add[0] / fps
    side = (-np.sin(h) * d[:, 0] + np.cos(h) * d[:, 1]) * root_scale[1] + add[1] / fps
    new_yaw = np.concatenate([[yaw[0]], yaw[0] + np.cumsum(np.diff(yaw) * root_scale[2] + add[2] / fps)])
    hh = new_yaw[:-1]
    steps = np.stack([np.cos(hh) * fwd - np.sin(hh) * side, np.sin(hh) * fwd + np.cos(hh) * side], axis=1)
    pos[1:, :2] = pos[0, :2] + np.cumsum(steps, axis=0)
    turn = rotations.from_rpy(np.stack([np.zeros_like(yaw), np.zeros_like(yaw), new_yaw - yaw], axis=1))
    quat = rotations.normalize(rotations.multiply(turn, quat))
    return MotionClip(name=name, fps=fps, root_pos=pos, root_quat=quat, joint_pos=np.array(clip.joint_pos[i0:i1]),
                      joint_mask=clip.joint_mask, source=clip.source)


def sideways(contract) -> list[dict]:
    walk7, walk6 = _clip("twist2/walk_007"), _clip("twist2/walk_006")
    variants = [
        ("walk_007 sidesteps as recorded", _reworked(walk7, 0.0, 5.5, "as recorded")),
        ("root velocity x 0.4, legs unchanged", _reworked(walk7, 0.0, 5.5, "root x 0.4", root_scale=(1.0, 0.4, 1.0))),
        ("whole clip 2.5 x slower", _reworked(walk7, 0.0, 5.5, "slow motion", time_scale=2.5)),
        ("stepping on the spot + 0.2 m/s root", _reworked(walk6, 7.0, 13.0, "on the spot", root_scale=(1.0, 1.0, 0.0),
                                                          add=(0.0, 0.2, 0.0))),
    ]
    out = []
    for label, clip in variants:
        fell, centres, achieved, reference = _robot_velocity(contract, clip)
        late = centres >= 0.5
        out.append({"variant": label, "fell": fell, "reference_vy": round(float(reference[late, 1].mean()), 3),
                    "achieved_vy": round(float(achieved[late, 1].mean()), 3),
                    "achieved_vx": round(float(achieved[late, 0].mean()), 3)})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim2sim.planner_coverage", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("ratios", "sideways"))
    parser.add_argument("--policy", default="twist2_student")
    args = parser.parse_args(argv)
    from gmt_ros.core.contract import load_contract

    contract = load_contract(args.policy)
    rows = ratios(contract) if args.what == "ratios" else sideways(contract)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join("—" if row[k] is None else str(row[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
