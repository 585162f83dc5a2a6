"""G1Sim: the MuJoCo G1 driven exactly like the real robot's motor drivers.

Rates: physics at ``physics_dt`` (1 kHz by default); the motor PD runs inside every physics step,
so a command sent at 50 Hz is tracked at 1 kHz with fresh joint readings, as on the robot.

Stepping uses MuJoCo's split step: ``mj_step1`` (kinematics, contacts, position/velocity sensors)
runs on the current state, the PD reads that state and sets ``ctrl``, then ``mj_step2``
integrates; ``mj_step1`` runs again at once on the new state. So between calls the kinematic
quantities and the gyro always describe the current state (the accelerometer, an acceleration
sensor, is the one computed for the step just taken).
"""
from __future__ import annotations

import mujoco
import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.state import RobotState
from sim2sim.g1_model import body_ids, build_g1_model, check_actuated_joints, foot_sphere_geoms, g1_index

_QUAT_NORM_TOL = 1e-6


def _contiguous(addresses: np.ndarray) -> slice | np.ndarray:
    """A slice when the addresses are consecutive (cheaper to index in the 1 kHz loop)."""
    a = np.asarray(addresses)
    if a.size and np.array_equal(a, np.arange(a[0], a[0] + a.size)):
        return slice(int(a[0]), int(a[0]) + a.size)
    return a


def _vector(value, size: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (size,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({size},)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


class G1Sim:
    """The simulated G1: reset, command, step, read state. Deterministic for a fixed seed.

    ``rng`` (seeded by ``seed``) is the one source of randomness for later domain randomisation;
    nothing random happens yet.
    """

    def __init__(self, model: mujoco.MjModel | None = None, physics_dt: float = 0.001, seed: int = 0):
        if model is None:
            model = build_g1_model(physics_dt)
        else:
            if abs(model.opt.timestep - physics_dt) > 1e-12:
                raise ValueError(f"model timestep {model.opt.timestep} s differs from physics_dt {physics_dt} s")
            check_actuated_joints(model)
        self.model = model
        self.data = mujoco.MjData(model)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        idx = g1_index(model)
        self._root_qpos = idx.root_qpos
        self._root_qvel = idx.root_qvel
        self._jq = _contiguous(idx.joint_qpos)
        self._jv = _contiguous(idx.joint_qvel)
        self._gyro = idx.gyro
        self._accel = idx.accel
        self._feet = foot_sphere_geoms(model)
        self._body_cache: dict[str, int] = {}
        self._tau_max = g1.TAU_MAX.astype(np.float64).copy()
        self.reset()  # also sets the zero-torque command

    # -- state setting ---------------------------------------------------------------------------

    def reset(self, root_pos=None, root_quat=None, joint_pos=None,
              root_lin_vel=None, root_ang_vel=None, joint_vel=None) -> None:
        """Start over at time 0 with the zero-torque command.

        Defaults: ``g1.DEFAULT_POSE``, upright, at rest, standing with the lowest sole point on the
        floor. Given values are used exactly: root_pos (m, world), root_quat (w, x, y, z,
        world←pelvis, unit length), joint_pos/joint_vel (29, slot order), root_lin_vel and
        root_ang_vel (world frame). Without root_pos the robot is placed at x = y = 0 at the
        height where its lowest sole point touches the floor.
        """
        n = g1.NUM_BODY_JOINTS
        q_joint = g1.DEFAULT_POSE if joint_pos is None else _vector(joint_pos, n, "joint_pos")
        quat = np.array([1.0, 0.0, 0.0, 0.0]) if root_quat is None else _vector(root_quat, 4, "root_quat")
        norm = np.linalg.norm(quat)
        if abs(norm - 1.0) > _QUAT_NORM_TOL:
            raise ValueError(f"root_quat must be a unit quaternion (w, x, y, z), |q| = {norm:.9f}")
        quat = quat / norm
        lin_vel = np.zeros(3) if root_lin_vel is None else _vector(root_lin_vel, 3, "root_lin_vel")
        ang_vel = np.zeros(3) if root_ang_vel is None else _vector(root_ang_vel, 3, "root_ang_vel")
        dq_joint = np.zeros(n) if joint_vel is None else _vector(joint_vel, n, "joint_vel")

        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        r = self._root_qpos
        d.qpos[r + 3:r + 7] = quat
        d.qpos[self._jq] = q_joint
        if root_pos is None:
            d.qpos[r:r + 3] = 0.0
            d.qpos[r + 2] = self._floor_clearance_height()
        else:
            d.qpos[r:r + 3] = _vector(root_pos, 3, "root_pos")
        v = self._root_qvel
        d.qvel[v:v + 3] = lin_vel
        d.qvel[v + 3:v + 6] = rotations.rotate_inverse(quat, ang_vel)  # MuJoCo keeps it in the body frame
        d.qvel[self._jv] = dq_joint
        mujoco.mj_forward(m, d)
        self._applied = np.zeros(n)
        self.set_command(JointCommand.zero_torque())

    def _floor_clearance_height(self) -> float:
        """Root height putting the lowest sole sphere on the floor (z = 0), for the pose in qpos."""
        d = self.data
        d.qpos[self._root_qpos + 2] = 0.0
        mujoco.mj_kinematics(self.model, d)
        bottoms = d.geom_xpos[self._feet, 2] - self.model.geom_size[self._feet, 0]
        return float(-bottoms.min())

    def set_command(self, cmd: JointCommand) -> None:
        """Hold ``cmd`` (validated, copied) until the next command; applied at every physics step."""
        if not isinstance(cmd, JointCommand):
            raise TypeError(f"expected a JointCommand, got {type(cmd).__name__}")
        cmd.validate()
        self._cmd = cmd.copy()
        self._q_cmd = np.asarray(cmd.q, dtype=np.float64).copy()
        self._dq_cmd = np.asarray(cmd.dq, dtype=np.float64).copy()
        self._kp = np.asarray(cmd.kp, dtype=np.float64).copy()
        self._kd = np.asarray(cmd.kd, dtype=np.float64).copy()
        self._tau_ff = np.asarray(cmd.tau, dtype=np.float64).copy()
        self._enabled = np.asarray(cmd.enabled, dtype=bool).copy()
        self._all_enabled = bool(self._enabled.all())

    @property
    def command(self) -> JointCommand:
        return self._cmd.copy()

    # -- stepping --------------------------------------------------------------------------------

    def _pd_torque(self) -> np.ndarray:
        """The motor drivers' law on the current joint reading, clipped to the motor limits."""
        d = self.data
        tau = self._kp * (self._q_cmd - d.qpos[self._jq]) + self._kd * (self._dq_cmd - d.qvel[self._jv]) + self._tau_ff
        np.clip(tau, -self._tau_max, self._tau_max, out=tau)
        if not self._all_enabled:
            tau[~self._enabled] = 0.0  # motor off
        return tau

    def step(self, n: int = 1) -> None:
        """Advance ``n`` physics steps with the held command."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"step count must be a non-negative integer, got {n!r}")
        m, d = self.model, self.data
        for _ in range(int(n)):
            tau = self._pd_torque()
            d.ctrl[:] = tau  # actuator i is slot i (checked when the model was built)
            mujoco.mj_step2(m, d)
            mujoco.mj_step1(m, d)
            self._applied = tau

    @property
    def time(self) -> float:
        return float(self.data.time)

    # -- reading ---------------------------------------------------------------------------------

    def state(self) -> RobotState:
        """What the robot would report now: joints in slot order, pelvis IMU, applied torques."""
        d = self.data
        r = self._root_qpos
        return RobotState(
            stamp=float(d.time),
            joint_pos=d.qpos[self._jq].copy(),
            joint_vel=d.qvel[self._jv].copy(),
            imu_quat=d.qpos[r + 3:r + 7].copy(),
            imu_gyro=d.sensordata[self._gyro].copy(),
            imu_acc=d.sensordata[self._accel].copy(),
            joint_tau=self._applied.copy(),
            tick=int(round(d.time * 1000.0)),  # the robot's tick counts milliseconds
        )

    def root_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Pelvis position (m, world) and orientation (w, x, y, z, world←pelvis)."""
        r = self._root_qpos
        return self.data.qpos[r:r + 3].copy(), self.data.qpos[r + 3:r + 7].copy()

    def root_velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Pelvis linear and angular velocity, both in the world frame."""
        v, r = self._root_qvel, self._root_qpos
        quat = self.data.qpos[r + 3:r + 7]
        return self.data.qvel[v:v + 3].copy(), rotations.rotate(quat, self.data.qvel[v + 3:v + 6])

    def applied_torque(self) -> np.ndarray:
        """Joint torques of the last physics step (after clipping; 0 for disabled motors)."""
        return self._applied.copy()

    def body_positions(self, names) -> np.ndarray:
        """World positions (len(names), 3) of the named bodies' frames."""
        ids = []
        for name in names:
            if name not in self._body_cache:
                self._body_cache[name] = int(body_ids(self.model, [name])[0])
            ids.append(self._body_cache[name])
        return self.data.xpos[ids].copy()
