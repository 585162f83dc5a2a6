"""Where the simulated robot starts, and the start-up gantry that holds it there.

Gantry: the pelvis welded to the world at its start pose (a MuJoCo weld equality, soft like a hoist,
so the IMU still reads gravity) until released, so the robot does not fall before the stack starts
commanding. ``sim2sim.sdk_robot`` releases it after ``hold_start_s`` of sim time, or, with
``hold_until_release``, when an operator asks on the DDS (``sim2sim.gantry_link``).
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim2sim.g1_model import DEFAULT_TIMESTEP, ROOT_BODY, build_g1_spec, compile_g1
from sim2sim.simulator import G1Sim

GANTRY_EQUALITY = "sim2sim_gantry"
_GANTRY_SOLREF = (0.005, 1.0)  # stiff, critically damped: a hoist, not a spring


@dataclass(frozen=True)
class StartPose:
    """Where the robot starts: None fields take G1Sim's defaults (default pose standing on the
    floor at x = y = 0)."""

    root_pos: np.ndarray | None = None
    root_quat: np.ndarray | None = None
    joint_pos: np.ndarray | None = None
    source: str = "default standing pose"


def start_pose_from_clip(name_or_path) -> StartPose:
    """The first frame of a clip (library name or path), at rest, with the clip's x, y and
    orientation but the height that puts the lowest sole point on the floor (some clips' first
    frames carry a wrong height, e.g. TWIST2 walk_004 at 1.83 m)."""
    from gmt_ros.core.clip_library import resolve_clip
    from gmt_ros.core.motion import load_clip

    path = resolve_clip(name_or_path)
    clip = load_clip(path)
    f0 = clip.sample(0.0)
    probe = G1Sim()
    probe.reset(root_quat=f0.root_quat[0], joint_pos=f0.joint_pos[0])
    floor_z = float(probe.root_pose()[0][2])
    root_pos = np.array([f0.root_pos[0][0], f0.root_pos[0][1], floor_z])
    return StartPose(root_pos, np.array(f0.root_quat[0]), np.array(f0.joint_pos[0]), f"clip {clip.name} frame 0 ({path})")


def build_model_with_gantry(physics_dt: float = DEFAULT_TIMESTEP, randomization=None) -> mujoco.MjModel:
    """The G1 model plus an inactive weld equality (world -> pelvis) named ``GANTRY_EQUALITY``,
    with the model-level effects of a domain-randomization draw (``DrawnParameters``) if given."""
    from sim2sim.randomized_model import randomize_compiled, randomize_spec

    spec = build_g1_spec(physics_dt)
    if randomization is not None:
        randomize_spec(spec, randomization)
    eq = spec.add_equality()
    eq.name = GANTRY_EQUALITY
    eq.type = mujoco.mjtEq.mjEQ_WELD
    eq.objtype = mujoco.mjtObj.mjOBJ_BODY
    eq.name1 = "world"
    eq.name2 = ROOT_BODY
    eq.active = False
    data = np.zeros(len(eq.data))
    data[6] = 1.0  # relpose quaternion (set at hold time); data[10] torque scale
    data[10] = 1.0
    eq.data = data
    eq.solref = np.array(_GANTRY_SOLREF)
    model = compile_g1(spec)
    return model if randomization is None else randomize_compiled(model, randomization)


class Gantry:
    """Holds the pelvis at a pose through the model's weld (body1 = world, body2 = pelvis, so the
    weld's relpose is the pelvis pose in the world)."""

    def __init__(self, sim: G1Sim):
        eq_id = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_EQUALITY, GANTRY_EQUALITY)
        if eq_id < 0:
            raise ValueError(f"the simulator's model has no {GANTRY_EQUALITY!r} weld; build it with build_model_with_gantry()")
        self._sim = sim
        self._id = int(eq_id)

    def hold(self, pos, quat) -> None:
        self._sim.model.eq_data[self._id, 3:6] = pos
        self._sim.model.eq_data[self._id, 6:10] = quat
        self._sim.data.eq_active[self._id] = 1

    def release(self) -> None:
        self._sim.data.eq_active[self._id] = 0

    @property
    def active(self) -> bool:
        return bool(self._sim.data.eq_active[self._id])
