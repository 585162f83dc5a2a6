"""The Unitree G1 low-level protocol (unitree_hg LowCmd_/LowState_) in the core's terms: a
``JointCommand`` into LowCmd_ and a LowState_ into a ``RobotState`` (the bridge), a ``RobotState``
into LowState_ and LowCmd_ into a ``JointCommand`` (the simulator), CRC checked on the way in. No
rclpy. The wire codec (struct layouts, CRC, the fast message types) is
``gmt_ros.adapters.lowlevel_codec``; its public names are re-exported here.
"""
# No "from __future__ import annotations": cyclonedds resolves the IDL field annotations at run time.
import operator

import numpy as np
from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_

from gmt_ros.adapters.lowlevel_codec import (  # the public codec names are part of this module's API
    _CMD_CRC,
    _CV_CRC,
    _LOWCMD_TEMPLATE,
    _STATE_CRC,
    _SV_CRC,
    _SV_REMOTE,
    _SV_RESERVE,
    LOWCMD_TYPES,
    LOWSTATE_TYPES,
    MODE_PR_PARALLEL,
    MODE_PR_SERIES,
    MOTOR_MODE_DISABLED,
    MOTOR_MODE_ENABLED,
    NUM_BODY,
    NUM_SLOTS,
    REMOTE_BYTES,
    CrcMismatchError,
    FastLowCmd_,
    FastLowState_,
    _body_column,
    _cmd_column,
    _pack,
    _require_crc,
    compute_crc,
    crc32_words,
    new_lowcmd,
    new_lowstate,
    verify_crc,
)
from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.state import RobotState

__all__ = [
    "LOWCMD_TYPES", "LOWSTATE_TYPES", "MODE_PR_PARALLEL", "MODE_PR_SERIES", "MOTOR_MODE_DISABLED",
    "MOTOR_MODE_ENABLED", "NUM_BODY", "NUM_SLOTS", "REMOTE_BYTES", "SIM_MOTOR_TEMPERATURE_C", "SIM_MOTOR_VOLTAGE",
    "CrcMismatchError", "FastLowCmd_", "FastLowState_", "build_lowstate", "compute_crc", "crc32_words",
    "live_motor_slots", "new_lowcmd", "new_lowstate", "pack_lowcmd", "unpack_lowcmd", "unpack_lowstate", "verify_crc",
]

# --------------------------------------------------------------------------------------------
# Bridge side: command out, state in


def _uint8(name: str, value) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if not 0 <= value <= 255:
        raise ValueError(f"{name} must be in 0..255 (uint8), got {value}")
    return value


def pack_lowcmd(cmd: JointCommand, mode_machine: int, mode_pr: int = MODE_PR_SERIES, msg: LowCmd_ | None = None) -> LowCmd_:
    """Fill a LowCmd_ from a 29-slot JointCommand and set its CRC (last).

    Slots 0-28 carry the command (motor mode 1 where ``cmd.enabled``, else 0); slots 29-34 are
    disabled with zeros. ``mode_machine`` must be the value the robot reports in its latest
    LowState_ (the robot ignores commands for another machine type). ``msg`` is reused when given.
    """
    cmd.validate()
    mode_machine = _uint8("mode_machine", mode_machine)
    if mode_pr not in (MODE_PR_SERIES, MODE_PR_PARALLEL):
        raise ValueError(f"mode_pr must be {MODE_PR_SERIES} (series/PR) or {MODE_PR_PARALLEL} (parallel/AB), got {mode_pr!r}")
    if msg is None:
        msg = new_lowcmd()
    elif not isinstance(msg, LOWCMD_TYPES):
        raise TypeError(f"msg must be a unitree_hg LowCmd_, got {type(msg).__name__}")
    if isinstance(msg, FastLowCmd_):
        v = list(_LOWCMD_TEMPLATE)  # slots 29-34 disabled with zeros, reserve 0, crc 0
        v[0], v[1] = mode_pr, mode_machine
        v[_cmd_column(0)] = np.asarray(cmd.enabled, dtype=np.uint8).tolist()  # 1 enabled, 0 disabled
        for column, values in enumerate((cmd.q, cmd.dq, cmd.tau, cmd.kp, cmd.kd), start=1):
            v[_cmd_column(column)] = np.asarray(values, dtype=np.float64).tolist()
        v[_CV_CRC] = crc32_words(_pack(_CMD_CRC, v, msg))
        msg._set_flat(v)
        return msg
    q, dq, tau = cmd.q.tolist(), cmd.dq.tolist(), cmd.tau.tolist()
    kp, kd, enabled = cmd.kp.tolist(), cmd.kd.tolist(), cmd.enabled.tolist()
    motors = msg.motor_cmd
    for i in range(NUM_BODY):
        m = motors[i]
        m.mode = MOTOR_MODE_ENABLED if enabled[i] else MOTOR_MODE_DISABLED
        m.q, m.dq, m.tau, m.kp, m.kd, m.reserve = q[i], dq[i], tau[i], kp[i], kd[i], 0
    for i in range(NUM_BODY, NUM_SLOTS):
        m = motors[i]
        m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve = MOTOR_MODE_DISABLED, 0.0, 0.0, 0.0, 0.0, 0.0, 0
    msg.mode_pr = mode_pr
    msg.mode_machine = mode_machine
    msg.reserve = [0, 0, 0, 0]
    msg.crc = 0
    msg.crc = compute_crc(msg)
    return msg


def unpack_lowstate(msg: LowState_, stamp: float, check_crc: bool = True) -> RobotState:
    """RobotState from a LowState_: the 29 body slots, pelvis IMU (quaternion w, x, y, z as sent),
    tau_est as joint_tau, mode_machine and tick. Raises CrcMismatchError on a bad CRC."""
    if check_crc:
        _require_crc(msg)
    flat = msg.__dict__.get("_flat") if isinstance(msg, FastLowState_) else None
    if flat is not None:  # as received: read the values without building the motor objects
        v = np.array(flat[:_SV_REMOTE], dtype=np.float64)
        return RobotState(
            stamp=float(stamp), joint_pos=v[_body_column(1)], joint_vel=v[_body_column(2)],
            imu_quat=v[5:9], imu_gyro=v[9:12], imu_acc=v[12:15], joint_tau=v[_body_column(4)],
            mode_machine=int(msg.mode_machine), tick=int(msg.tick),
        )
    body = msg.motor_state[:NUM_BODY]
    imu = msg.imu_state
    return RobotState(
        stamp=float(stamp),
        joint_pos=np.array([m.q for m in body]),
        joint_vel=np.array([m.dq for m in body]),
        imu_quat=np.array(imu.quaternion, dtype=np.float64),
        imu_gyro=np.array(imu.gyroscope, dtype=np.float64),
        imu_acc=np.array(imu.accelerometer, dtype=np.float64),
        joint_tau=np.array([m.tau_est for m in body]),
        mode_machine=int(msg.mode_machine),
        tick=int(msg.tick),
    )


def live_motor_slots(msg: LowState_, previous: LowState_ | None = None) -> np.ndarray:
    """Which of the 35 slots report a live motor (bool array).

    Heuristic: a slot whose motor is absent or unpowered reports an all-zero entry, so a slot is
    live when any of mode, motorstate (error code), temperature, voltage, q, dq or tau_est is
    non-zero, or when q changed since ``previous``. Not verified on hardware: a powered motor at
    exactly q = 0 with zero temperature and voltage would read as dead. Use it to check which
    slots a robot really drives (23- vs 29-DoF, locked waist) before enabling a policy.
    """
    live = np.zeros(NUM_SLOTS, dtype=bool)
    old = previous.motor_state if previous is not None else None
    for i, m in enumerate(msg.motor_state):
        live[i] = bool(
            m.mode or m.motorstate or any(m.temperature) or m.vol or m.q or m.dq or m.tau_est
            or (old is not None and old[i].q != m.q)
        )
    return live


# --------------------------------------------------------------------------------------------
# Robot side (the simulator): state out, command in

# Nominal numbers the simulator reports so start-up checks see live motors; not robot data.
SIM_MOTOR_TEMPERATURE_C = 30
SIM_MOTOR_VOLTAGE = 48.0


def _remote_field(wireless_remote) -> bytes:
    raw = bytes(wireless_remote)
    if len(raw) != REMOTE_BYTES:
        raise ValueError(f"wireless_remote must be {REMOTE_BYTES} bytes, got {len(raw)}")
    return raw


def _lowstate_template() -> list:
    """Flat LowState_ values with everything build_lowstate does not take from the RobotState:
    identity quaternion, enabled body motors at nominal temperature and voltage, zeros elsewhere."""
    values = [0] * (_SV_CRC + 1)
    values[5] = 1.0
    values[_body_column(0)] = [MOTOR_MODE_ENABLED] * NUM_BODY
    values[_body_column(5)] = [SIM_MOTOR_TEMPERATURE_C] * NUM_BODY
    values[_body_column(6)] = [SIM_MOTOR_TEMPERATURE_C] * NUM_BODY
    values[_body_column(7)] = [SIM_MOTOR_VOLTAGE] * NUM_BODY
    return values


_LOWSTATE_TEMPLATE = tuple(_lowstate_template())


def build_lowstate(
    state: RobotState,
    wireless_remote: bytes | None = None,
    mode_pr: int = MODE_PR_SERIES,
    msg: LowState_ | None = None,
) -> LowState_:
    """A LowState_ as the robot sends it, from a RobotState (its tick and mode_machine included),
    with imu rpy derived from the quaternion, nominal motor temperature/voltage on the 29 body
    slots (zeros on 29-34) and the CRC set last. A FastLowState_ (the default, or ``msg``) is
    filled as flat values (see FastLowState_); the SDK's LowState_ field by field."""
    state.validate()
    mode_machine = _uint8("mode_machine", state.mode_machine)
    mode_pr = _uint8("mode_pr", mode_pr)
    remote = _remote_field(wireless_remote) if wireless_remote is not None else bytes(REMOTE_BYTES)
    if msg is not None and not isinstance(msg, LOWSTATE_TYPES):
        raise TypeError(f"msg must be a unitree_hg LowState_, got {type(msg).__name__}")
    if msg is None or isinstance(msg, FastLowState_):
        v = list(_LOWSTATE_TEMPLATE)
        v[2], v[3], v[4] = mode_pr, mode_machine, int(state.tick) % (1 << 32)
        v[5:9] = state.imu_quat.tolist()
        v[9:12] = state.imu_gyro.tolist()
        v[12:15] = state.imu_acc.tolist()
        v[15:18] = rotations.to_rpy(state.imu_quat).tolist()
        v[18] = SIM_MOTOR_TEMPERATURE_C
        v[_body_column(1)] = state.joint_pos.tolist()
        v[_body_column(2)] = state.joint_vel.tolist()
        v[_body_column(4)] = state.joint_tau.tolist()
        v[_SV_REMOTE:_SV_RESERVE] = remote
        v[_SV_CRC] = crc32_words(_pack(_STATE_CRC, v, msg))
        return FastLowState_._from_flat(v, msg)
    q, dq, tau = state.joint_pos.tolist(), state.joint_vel.tolist(), state.joint_tau.tolist()
    for i, m in enumerate(msg.motor_state):
        if i < NUM_BODY:
            m.mode, m.q, m.dq, m.ddq, m.tau_est = MOTOR_MODE_ENABLED, q[i], dq[i], 0.0, tau[i]
            m.temperature = [SIM_MOTOR_TEMPERATURE_C, SIM_MOTOR_TEMPERATURE_C]
            m.vol = SIM_MOTOR_VOLTAGE
        else:
            m.mode, m.q, m.dq, m.ddq, m.tau_est, m.temperature, m.vol = 0, 0.0, 0.0, 0.0, 0.0, [0, 0], 0.0
        m.sensor, m.motorstate, m.reserve = [0, 0], 0, [0, 0, 0, 0]
    imu = msg.imu_state
    imu.quaternion = [float(x) for x in state.imu_quat]
    imu.gyroscope = [float(x) for x in state.imu_gyro]
    imu.accelerometer = [float(x) for x in state.imu_acc]
    imu.rpy = rotations.to_rpy(state.imu_quat).tolist()
    imu.temperature = SIM_MOTOR_TEMPERATURE_C
    msg.version = [0, 0]
    msg.mode_pr = mode_pr
    msg.mode_machine = mode_machine
    msg.tick = int(state.tick) % (1 << 32)
    msg.wireless_remote = remote
    msg.reserve = [0, 0, 0, 0]
    msg.crc = 0
    msg.crc = compute_crc(msg)
    return msg


def unpack_lowcmd(msg: LowCmd_, check_crc: bool = True) -> tuple[JointCommand, int]:
    """(JointCommand for the 29 body slots, mode_machine) from a LowCmd_, as the robot reads it.

    Motor mode 1 is enabled, 0 disabled; any other mode is an error naming the slot. Slots 29-34
    are not part of the body and are ignored. Raises CrcMismatchError on a bad CRC.
    """
    if check_crc:
        _require_crc(msg)
    body = msg.motor_cmd[:NUM_BODY]
    enabled = np.empty(NUM_BODY, dtype=bool)
    for i, m in enumerate(body):
        if m.mode not in (MOTOR_MODE_DISABLED, MOTOR_MODE_ENABLED):
            raise ValueError(f"LowCmd_ motor_cmd[{i}] ({g1.JOINT_NAMES[i]}) has mode {m.mode}, expected 0 or 1")
        enabled[i] = m.mode == MOTOR_MODE_ENABLED
    cmd = JointCommand(
        q=np.array([m.q for m in body]),
        dq=np.array([m.dq for m in body]),
        kp=np.array([m.kp for m in body]),
        kd=np.array([m.kd for m in body]),
        tau=np.array([m.tau for m in body]),
        enabled=enabled,
    )
    return cmd, int(msg.mode_machine)
