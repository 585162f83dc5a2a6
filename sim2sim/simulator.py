"""G1Sim: the MuJoCo G1 driven exactly like the real robot's motor drivers.

Rates: physics at ``physics_dt`` (1 kHz by default); the motor PD runs inside every physics step,
so a command sent at 50 Hz is tracked at 1 kHz with fresh joint readings, as on the robot.

Stepping uses MuJoCo's split step: ``mj_step1`` (kinematics, contacts, position/velocity sensors)
runs on the current state, the PD reads that state and sets ``ctrl``, then ``mj_step2``
integrates; ``mj_step1`` runs again at once on the new state. So between calls the kinematic
quantities and the gyro always describe the current state (the accelerometer, an acceleration
sensor, is the one computed for the step just taken).

Domain randomisation (``randomization=``, a :class:`sim2sim.randomization.DrawnParameters`):
model-level values are compiled into the model; runtime ones act here. Commands pass a delay line
(action delay + link delay/jitter/drops, whole physics steps) before the motors see them; the
motor driver applies its gain error, motor strength and the joint calibration offset; pushes add
to the root velocity at the end of the physics step that reaches their time; ``state()`` returns
an older sample (state link) with sensor errors. Without randomisation (or with the ``none``
preset) every code path and result is exactly that of the plain simulator.
"""
from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.state import RobotState
from sim2sim.g1_model import body_ids, build_g1_model, check_actuated_joints, foot_sphere_geoms, g1_index
from sim2sim.randomization import DomainRandomization, DrawnParameters
from sim2sim.randomized_model import build_randomized_model, check_randomized_model
from sim2sim.runtime_randomization import DelayLine, apply_sensor_errors, seconds_to_steps

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


def _copy_state(s: RobotState) -> RobotState:
    return dataclasses.replace(s, **{k: np.array(getattr(s, k), copy=True) for k in _STATE_ARRAYS})


_STATE_ARRAYS = ("joint_pos", "joint_vel", "imu_quat", "imu_gyro", "imu_acc", "joint_tau")


class G1Sim:
    """The simulated G1: reset, command, step, read state. Deterministic for a fixed seed.

    ``rng`` (seeded by ``seed``) is free for callers; domain randomisation draws from its own
    generators seeded by ``randomization.runtime_seed`` (re-seeded at every reset, so a reset
    episode replays exactly).
    """

    def __init__(self, model: mujoco.MjModel | None = None, physics_dt: float = 0.001, seed: int = 0,
                 randomization: DrawnParameters | None = None):
        if randomization is not None and not isinstance(randomization, DrawnParameters):
            raise TypeError(f"randomization must be DrawnParameters or None, got {type(randomization).__name__}")
        if model is None:
            if randomization is not None and randomization.has_model_effects:
                model = build_randomized_model(randomization, physics_dt)
            else:
                model = build_g1_model(physics_dt)
        else:
            if abs(model.opt.timestep - physics_dt) > 1e-12:
                raise ValueError(f"model timestep {model.opt.timestep} s differs from physics_dt {physics_dt} s")
            check_actuated_joints(model)
            if randomization is not None and randomization.has_model_effects:
                check_randomized_model(model, randomization)
        self.model = model
        self.data = mujoco.MjData(model)
        self.physics_dt = float(physics_dt)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.randomization = randomization
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
        self._steps = 0
        self._init_runtime_randomization(randomization)
        self.reset()  # also sets the zero-torque command

    @classmethod
    def randomized(cls, preset: str, seed: int, physics_dt: float = 0.001) -> G1Sim:
        """A simulator with one episode of domain randomisation: ``preset`` is a name in
        config/randomization.yaml (``none``, ``gmt``, ``hard``) or a YAML file of one preset, and
        ``seed`` both draws the values and seeds the simulator. ``sim.randomization.as_dict()``
        is what to report."""
        drawn = DomainRandomization.from_preset(preset, seed)
        return cls(physics_dt=physics_dt, seed=seed, randomization=drawn)

    def _init_runtime_randomization(self, drawn: DrawnParameters | None) -> None:
        """Per-episode constants of the runtime effects, in physics steps and arrays."""
        self._dr = drawn is not None and drawn.has_runtime_effects
        if not self._dr:
            return
        dt = self.physics_dt
        self._cmd_delay_steps = seconds_to_steps(drawn.action_delay_s, dt) + seconds_to_steps(drawn.command_delay_s, dt)
        self._cmd_jitter_steps = seconds_to_steps(drawn.command_jitter_s, dt)
        self._use_cmd_line = bool(self._cmd_delay_steps or self._cmd_jitter_steps or drawn.command_drop_prob)
        self._strength = np.asarray(drawn.motor_strength, dtype=np.float64)
        self._kp_scale = np.asarray(drawn.kp_scale, dtype=np.float64) * self._strength
        self._kd_scale = np.asarray(drawn.kd_scale, dtype=np.float64) * self._strength
        self._joint_offset = np.asarray(drawn.joint_pos_offset_rad, dtype=np.float64)
        self._push_steps = [seconds_to_steps(t, dt) for t in drawn.push_times_s]
        self._push_dv = np.asarray(drawn.push_velocities_mps, dtype=np.float64).reshape(-1, 2)
        self._state_delay_steps = seconds_to_steps(drawn.state_delay_s, dt)
        self._state_jitter_steps = seconds_to_steps(drawn.state_jitter_s, dt)
        self._ring_len = self._state_delay_steps + self._state_jitter_steps + 1
        self._use_ring = self._ring_len > 1
        self._sensor_errors = drawn.has_sensor_errors
        self._randomized_state = self._use_ring or self._sensor_errors or drawn.state_drop_prob > 0
        n = g1.NUM_BODY_JOINTS
        # One ring row per physics step: joint pos | joint vel | quat | gyro | acc | applied torque.
        self._ring_cols = np.cumsum([0, n, n, 4, 3, 3, n])
        self._ring = np.zeros((self._ring_len, int(self._ring_cols[-1])))

    def _reset_runtime_randomization(self) -> None:
        drawn = self.randomization
        cmd_seq, state_seq = np.random.SeedSequence(drawn.runtime_seed).spawn(2)
        self._cmd_rng = np.random.default_rng(cmd_seq)
        self._state_rng = np.random.default_rng(state_seq)
        self._cmd_line = (DelayLine(self._cmd_delay_steps, self._cmd_jitter_steps, drawn.command_drop_prob,
                                    self._cmd_rng) if self._use_cmd_line else None)
        self._next_push = 0
        self._last_obs: RobotState | None = None
        self._last_sample = 0
        if self._use_ring:
            self._record_sample()

    # -- state setting ---------------------------------------------------------------------------

    def reset(self, root_pos=None, root_quat=None, joint_pos=None,
              root_lin_vel=None, root_ang_vel=None, joint_vel=None) -> None:
        """Start over at time 0 with the zero-torque command.

        Defaults: ``g1.DEFAULT_POSE``, upright, at rest, standing with the lowest sole point on the
        floor. Given values are used exactly: root_pos (m, world), root_quat (w, x, y, z,
        world←pelvis, unit length), joint_pos/joint_vel (29, slot order), root_lin_vel and
        root_ang_vel (world frame). Without root_pos the robot is placed at x = y = 0 at the
        height where its lowest sole point touches the floor (z = 0; on randomised terrain the
        bump tops are at z = 0 and the robot settles into the valleys).

        With randomisation the episode replays: queued commands are dropped, pushes start over
        and the runtime random generators are re-seeded; the drawn values stay.
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
        self._steps = 0
        if self._dr:
            self._reset_runtime_randomization()
        # Immediate, past any command delay: the motors start at zero torque.
        self._cmd = JointCommand.zero_torque()
        self._activate(self._cmd)

    def _floor_clearance_height(self) -> float:
        """Root height putting the lowest sole sphere on the floor (z = 0), for the pose in qpos."""
        d = self.data
        d.qpos[self._root_qpos + 2] = 0.0
        mujoco.mj_kinematics(self.model, d)
        bottoms = d.geom_xpos[self._feet, 2] - self.model.geom_size[self._feet, 0]
        return float(-bottoms.min())

    def set_command(self, cmd: JointCommand) -> None:
        """Send ``cmd`` (validated, copied) to the motors, which hold it until the next one arrives
        and apply it at every physics step. Without a command delay it arrives at once."""
        if not isinstance(cmd, JointCommand):
            raise TypeError(f"expected a JointCommand, got {type(cmd).__name__}")
        cmd.validate()
        self._cmd = cmd.copy()
        if self._dr and self._cmd_line is not None:
            self._cmd_line.send(self._cmd, self._steps)
        else:
            self._activate(self._cmd)

    def _activate(self, cmd: JointCommand) -> None:
        """The motors take ``cmd`` (already validated). With randomisation the driver's gain error
        and motor strength are folded into the gains, and the calibration offset into the target:
        strength·(kp'(q - (q_meas + offset)) + kd'(dq - dq_meas) + tau) with kp' = kp·kp_scale."""
        self._motor_cmd = cmd
        self._q_cmd = np.asarray(cmd.q, dtype=np.float64).copy()
        self._dq_cmd = np.asarray(cmd.dq, dtype=np.float64).copy()
        self._kp = np.asarray(cmd.kp, dtype=np.float64).copy()
        self._kd = np.asarray(cmd.kd, dtype=np.float64).copy()
        self._tau_ff = np.asarray(cmd.tau, dtype=np.float64).copy()
        self._enabled = np.asarray(cmd.enabled, dtype=bool).copy()
        self._all_enabled = bool(self._enabled.all())
        if self._dr:
            self._q_cmd -= self._joint_offset
            self._kp *= self._kp_scale
            self._kd *= self._kd_scale
            self._tau_ff *= self._strength

    @property
    def command(self) -> JointCommand:
        """The last command sent with set_command (the motors may not have it yet)."""
        return self._cmd.copy()

    @property
    def motor_command(self) -> JointCommand:
        """The command the motors are applying now (differs from ``command`` while one is delayed)."""
        return self._motor_cmd.copy()

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
        if self._dr:
            self._step_randomized(int(n))
            return
        m, d = self.model, self.data
        for _ in range(int(n)):
            tau = self._pd_torque()
            d.ctrl[:] = tau  # actuator i is slot i (checked when the model was built)
            mujoco.mj_step2(m, d)
            mujoco.mj_step1(m, d)
            self._applied = tau
        self._steps += int(n)

    def _step_randomized(self, n: int) -> None:
        m, d = self.model, self.data
        line = self._cmd_line
        for _ in range(n):
            if line is not None and line.pending:
                arrived = line.receive(self._steps)
                if arrived is not None:
                    self._activate(arrived)
            tau = self._pd_torque()
            d.ctrl[:] = tau
            mujoco.mj_step2(m, d)
            mujoco.mj_step1(m, d)
            self._applied = tau
            self._steps += 1
            if self._next_push < len(self._push_steps) and self._push_steps[self._next_push] <= self._steps:
                self._push(self._push_dv[self._next_push])
                self._next_push += 1
            if self._use_ring:
                self._record_sample()

    def _push(self, dv_xy: np.ndarray) -> None:
        """A velocity kick: the whole robot's world x, y velocity changes by ``dv_xy`` now."""
        v = self._root_qvel
        self.data.qvel[v:v + 2] += dv_xy
        mujoco.mj_step1(self.model, self.data)  # velocity-dependent quantities and the gyro follow

    def _record_sample(self) -> None:
        d, c, r = self.data, self._ring_cols, self._root_qpos
        row = self._ring[self._steps % self._ring_len]
        row[c[0]:c[1]] = d.qpos[self._jq]
        row[c[1]:c[2]] = d.qvel[self._jv]
        row[c[2]:c[3]] = d.qpos[r + 3:r + 7]
        row[c[3]:c[4]] = d.sensordata[self._gyro]
        row[c[4]:c[5]] = d.sensordata[self._accel]
        row[c[5]:c[6]] = self._applied

    @property
    def time(self) -> float:
        return float(self.data.time)

    # -- reading ---------------------------------------------------------------------------------

    def state(self) -> RobotState:
        """What the robot would report now: joints in slot order, pelvis IMU, applied torques.

        With randomisation: the newest sample that reached the reader over the state link (``tick``
        is when it was taken, ``stamp`` when it arrived; a lost read repeats the previous one,
        stamp included), with the drawn sensor errors applied.
        """
        if self._dr and self._randomized_state:
            return self._randomized_state_read()
        return self._current_state()

    def _current_state(self) -> RobotState:
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

    def _randomized_state_read(self) -> RobotState:
        drawn = self.randomization
        rng = self._state_rng
        if self._last_obs is not None and drawn.state_drop_prob and rng.random() < drawn.state_drop_prob:
            return _copy_state(self._last_obs)
        if self._use_ring:
            age = self._state_delay_steps
            if self._state_jitter_steps:
                age += int(rng.integers(0, self._state_jitter_steps + 1))
            sample = max(self._steps - age, self._last_sample, 0)  # never older than the last read
            row, c = self._ring[sample % self._ring_len], self._ring_cols
            truth = RobotState(
                stamp=self.time,
                joint_pos=row[c[0]:c[1]].copy(), joint_vel=row[c[1]:c[2]].copy(), imu_quat=row[c[2]:c[3]].copy(),
                imu_gyro=row[c[3]:c[4]].copy(), imu_acc=row[c[4]:c[5]].copy(), joint_tau=row[c[5]:c[6]].copy(),
                tick=int(round(sample * self.physics_dt * 1000.0)),
            )
            self._last_sample = sample
        else:
            truth = self._current_state()
        obs = apply_sensor_errors(truth, drawn, rng) if self._sensor_errors else truth
        self._last_obs = obs
        return _copy_state(obs)

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
