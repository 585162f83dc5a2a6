"""The Unitree G1 low-level protocol (unitree_hg LowCmd_/LowState_): packing, unpacking, CRC.

Both sides are here: the bridge packs commands and unpacks state, the simulator packs state and
unpacks commands. No rclpy.

Speed. The SDK's CDR codec and CRC are pure Python (LowState_ ≈ 0.7 ms to decode, its CRC
≈ 0.4 ms; LowCmd_ ≈ 0.3 ms to encode plus 0.15 ms CRC), a large share of a core at 500 Hz. Both
messages are fixed-size "final" structs, so this module packs them with one precompiled
``struct`` each:

- the CRC image is the C struct layout the SDK's ``CRC`` packs (members 4-byte aligned),
  CRC-32/MPEG-2 over its 32-bit words except the last (the crc itself), computed with
  ``zlib`` on bit-reversed bytes (identical to ``CRC().Crc``, checked in the tests);
- the wire image is XCDR1 little-endian, which differs from the C layout only in padding
  (a uint8 after a uint8/int16 is not padded to 4 bytes), so both images take the same flat
  value list.

``FastLowCmd_``/``FastLowState_`` repeat the SDK's IDL definitions (same type name, members and
XTypes type information, checked in the tests) with that codec, so they interoperate with the
SDK's own types and with the robot; everything here accepts either class.
"""
# No "from __future__ import annotations": cyclonedds resolves the IDL field annotations at run time.
import operator
import struct
import zlib
from dataclasses import dataclass

import cyclonedds.idl as idl
import cyclonedds.idl.annotations as annotate
import cyclonedds.idl.types as types
import numpy as np
from unitree_sdk2py.idl.unitree_hg.msg.dds_ import IMUState_, LowCmd_, LowState_, MotorCmd_, MotorState_

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.state import RobotState

NUM_SLOTS = g1.NUM_MOTOR_SLOTS
NUM_BODY = g1.NUM_BODY_JOINTS
REMOTE_BYTES = 40

MOTOR_MODE_DISABLED = 0
MOTOR_MODE_ENABLED = 1
MODE_PR_SERIES = 0  # ankle pitch/roll commanded as joints (what policies are trained with)
MODE_PR_PARALLEL = 1  # ankle A/B motors commanded directly

_CMD_CRC = struct.Struct("<2B2x" + "B3x5fI" * NUM_SLOTS + "5I")
_CMD_CDR = struct.Struct("<2BBx5fI" + "B3x5fI" * (NUM_SLOTS - 1) + "5I")
_STATE_CRC = struct.Struct("<2I2B2xI13fh2x" + "B3x4f2hf7I" * NUM_SLOTS + f"{REMOTE_BYTES}B5I")
_STATE_CDR = struct.Struct("<2I2B2xI13fhBx4f2hf7I" + "B3x4f2hf7I" * (NUM_SLOTS - 1) + f"{REMOTE_BYTES}B5I")
_CMD_PER_MOTOR = 7  # mode q dq tau kp kd reserve
_STATE_PER_MOTOR = 15  # mode q dq ddq tau_est temperature[2] vol sensor[2] motorstate reserve[4]
_STATE_HEAD = 5 + 14  # version[2] mode_pr mode_machine tick | imu: 13 floats + temperature
# Positions in a LowState_'s flat value list (the order of both struct layouts).
_SV_REMOTE = _STATE_HEAD + NUM_SLOTS * _STATE_PER_MOTOR
_SV_RESERVE = _SV_REMOTE + REMOTE_BYTES
_SV_CRC = _SV_RESERVE + 4


def _body_column(field: int) -> slice:
    """The values of one motor_state field (0 mode, 1 q, 2 dq, 3 ddq, 4 tau_est, ...) of the 29 body slots."""
    start = _STATE_HEAD + field
    return slice(start, start + NUM_BODY * _STATE_PER_MOTOR, _STATE_PER_MOTOR)


# Positions in a LowCmd_'s flat value list: mode_pr, mode_machine, 35 x (mode q dq tau kp kd reserve), reserve[4], crc.
_CV_RESERVE = 2 + NUM_SLOTS * _CMD_PER_MOTOR
_CV_CRC = _CV_RESERVE + 4
_LOWCMD_TEMPLATE = tuple([0, 0] + [0, 0.0, 0.0, 0.0, 0.0, 0.0, 0] * NUM_SLOTS + [0, 0, 0, 0, 0])


def _cmd_column(field: int) -> slice:
    """The values of one motor_cmd field (0 mode, 1 q, 2 dq, 3 tau, 4 kp, 5 kd) of the 29 body slots."""
    start = 2 + field
    return slice(start, start + NUM_BODY * _CMD_PER_MOTOR, _CMD_PER_MOTOR)

_CDR_LE_HEADER = b"\x00\x01\x00\x00"  # XCDR1, little-endian, no options
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


class CrcMismatchError(ValueError):
    """A message whose crc field does not match its content (the robot drops such commands)."""


# --------------------------------------------------------------------------------------------
# Flat value lists (the same list feeds the CRC image and the wire image)


def _lowcmd_values(msg: LowCmd_) -> list:
    values = [msg.mode_pr, msg.mode_machine]
    for m in msg.motor_cmd:
        values += (m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve)
    values += msg.reserve
    values.append(msg.crc)
    return values


def _lowstate_values(msg: LowState_) -> list:
    imu = msg.imu_state
    values = [*msg.version, msg.mode_pr, msg.mode_machine, msg.tick]
    values += imu.quaternion
    values += imu.gyroscope
    values += imu.accelerometer
    values += imu.rpy
    values.append(imu.temperature)
    for m in msg.motor_state:
        values += (m.mode, m.q, m.dq, m.ddq, m.tau_est, *m.temperature, m.vol, *m.sensor, m.motorstate, *m.reserve)
    values += msg.wireless_remote
    values += msg.reserve
    values.append(msg.crc)
    return values


def _cmd_values(msg) -> list:
    """The flat values of a LowCmd_: from its flat list when pack_lowcmd built one, with the
    top-level fields laid over; else from its motor objects."""
    flat = msg.__dict__.get("_flat") if isinstance(msg, FastLowCmd_) else None
    if flat is None:
        return _lowcmd_values(msg)
    values = list(flat)
    values[0:2] = (msg.mode_pr, msg.mode_machine)
    values[_CV_RESERVE:_CV_CRC] = msg.reserve
    values[_CV_CRC] = msg.crc
    return values


def _state_values(msg) -> list:
    """The flat values of a LowState_: from its flat list when it carries one (built by
    build_lowstate or received, motor/IMU objects not materialised), with the top-level fields
    (which may have been changed since) laid over; else from its objects."""
    flat = msg.__dict__.get("_flat") if isinstance(msg, FastLowState_) else None
    if flat is None:
        return _lowstate_values(msg)
    values = list(flat)
    values[0:5] = (*msg.version, msg.mode_pr, msg.mode_machine, msg.tick)
    values[_SV_REMOTE:_SV_RESERVE] = msg.wireless_remote
    values[_SV_RESERVE:_SV_CRC] = msg.reserve
    values[_SV_CRC] = msg.crc
    return values


def _name(msg) -> str:
    """The IDL name (LowCmd_/LowState_) whichever Python class carries it."""
    return msg.__idl_typename__.rsplit(".", 1)[-1]


def _check_lengths(msg) -> None:
    """struct.pack would report a wrong array length only as a value count; name the field."""
    if isinstance(msg, LOWCMD_TYPES):
        arrays = {"motor_cmd": (msg.motor_cmd, NUM_SLOTS), "reserve": (msg.reserve, 4)}
    else:
        arrays = {
            "version": (msg.version, 2),
            "motor_state": (msg.motor_state, NUM_SLOTS),
            "wireless_remote": (msg.wireless_remote, REMOTE_BYTES),
            "reserve": (msg.reserve, 4),
            "imu_state.quaternion": (msg.imu_state.quaternion, 4),
        }
    for name, (value, n) in arrays.items():
        if len(value) != n:
            raise ValueError(f"{_name(msg)}.{name} has {len(value)} entries, expected {n}")


def _pack(layout: struct.Struct, values: list, msg) -> bytes:
    try:
        return layout.pack(*values)
    except struct.error as exc:
        _check_lengths(msg)
        raise ValueError(f"{_name(msg)} has a field out of range for its wire type: {exc}") from None


# --------------------------------------------------------------------------------------------
# CRC


def crc32_words(image: bytes) -> int:
    """Unitree's CRC-32 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final xor) over the
    little-endian 32-bit words of ``image`` except the last one (the crc slot).

    The SDK feeds each word MSB first; that equals CRC-32/MPEG-2 over the word's big-endian bytes,
    which is zlib's reflected CRC-32 over bit-reversed bytes, bit-reversed (without the final xor).
    """
    if len(image) % 4:
        raise ValueError(f"CRC image length {len(image)} is not a multiple of 4")
    words = np.frombuffer(image, dtype="<u4")[:-1]
    big_endian = words.astype(">u4").tobytes()
    reflected = zlib.crc32(big_endian.translate(_BIT_REVERSED)) ^ 0xFFFFFFFF
    return int.from_bytes(reflected.to_bytes(4, "little").translate(_BIT_REVERSED), "big")


def compute_crc(msg) -> int:
    """The crc a LowCmd_ or LowState_ (unitree_hg) must carry, as ``CRC().Crc(msg)`` computes it."""
    if isinstance(msg, LOWCMD_TYPES):
        return crc32_words(_pack(_CMD_CRC, _cmd_values(msg), msg))
    if isinstance(msg, LOWSTATE_TYPES):
        return crc32_words(_pack(_STATE_CRC, _state_values(msg), msg))
    raise TypeError(f"compute_crc expects a unitree_hg LowCmd_ or LowState_, got {type(msg).__name__}")


def verify_crc(msg) -> bool:
    """True when the message's crc field matches its content."""
    return compute_crc(msg) == msg.crc


def _require_crc(msg) -> None:
    expected = compute_crc(msg)
    if expected != msg.crc:
        raise CrcMismatchError(
            f"{_name(msg)} CRC mismatch: message carries 0x{msg.crc:08x}, content gives 0x{expected:08x}"
        )


# --------------------------------------------------------------------------------------------
# Fast wire types


@dataclass
@annotate.final
@annotate.autoid("sequential")
class FastLowCmd_(idl.IdlStruct, typename="unitree_hg.msg.dds_.LowCmd_"):
    """unitree_hg LowCmd_ with a single-struct XCDR1 codec. Same IDL definition as the SDK's
    (a subclass would be an XTypes derived type and not match the robot's)."""

    mode_pr: types.uint8
    mode_machine: types.uint8
    motor_cmd: types.array[MotorCmd_, NUM_SLOTS]
    reserve: types.array[types.uint32, 4]
    crc: types.uint32

    def serialize(self, buffer=None, endianness=None, use_version_2=None) -> bytes:
        if buffer is not None or endianness is not None or use_version_2:
            return super().serialize(buffer=buffer, endianness=endianness, use_version_2=use_version_2)
        return _CDR_LE_HEADER + _pack(_CMD_CDR, _cmd_values(self), self)

    # pack_lowcmd fills a reused message as one flat value list ("_flat", as FastLowState_ does):
    # setting 35 MotorCmd_ objects' fields field by field cost more than the rest of the packing.
    # The motor objects are built only when something reads them; from then on they count.

    def __getattr__(self, name):
        flat = self.__dict__.get("_flat") if name == "motor_cmd" else None
        if flat is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.__dict__["motor_cmd"] = [MotorCmd_(*flat[k:k + _CMD_PER_MOTOR])
                                      for k in range(2, _CV_RESERVE, _CMD_PER_MOTOR)]
        del self.__dict__["_flat"]
        return self.__dict__["motor_cmd"]

    def _set_flat(self, values: list) -> None:
        d = self.__dict__
        d.pop("motor_cmd", None)
        d["_flat"] = values
        d["mode_pr"], d["mode_machine"] = values[0], values[1]
        d["reserve"], d["crc"] = list(values[_CV_RESERVE:_CV_CRC]), values[_CV_CRC]

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2=None) -> "FastLowCmd_":
        if not (has_header and data[:2] == _CDR_LE_HEADER[:2] and len(data) >= 4 + _CMD_CDR.size):
            return super().deserialize(data, has_header=has_header, use_version_2=use_version_2)
        v = _CMD_CDR.unpack_from(data, 4)
        motors = [MotorCmd_(*v[2 + k : 2 + k + _CMD_PER_MOTOR]) for k in range(0, NUM_SLOTS * _CMD_PER_MOTOR, _CMD_PER_MOTOR)]
        tail = 2 + NUM_SLOTS * _CMD_PER_MOTOR
        return cls(v[0], v[1], motors, list(v[tail : tail + 4]), v[tail + 4])


@dataclass
@annotate.final
@annotate.autoid("sequential")
class FastLowState_(idl.IdlStruct, typename="unitree_hg.msg.dds_.LowState_"):
    """unitree_hg LowState_ with a single-struct XCDR1 codec (same IDL definition as the SDK's)."""

    version: types.array[types.uint32, 2]
    mode_pr: types.uint8
    mode_machine: types.uint8
    tick: types.uint32
    imu_state: IMUState_
    motor_state: types.array[MotorState_, NUM_SLOTS]
    wireless_remote: types.array[types.uint8, REMOTE_BYTES]
    reserve: types.array[types.uint32, 4]
    crc: types.uint32

    def serialize(self, buffer=None, endianness=None, use_version_2=None) -> bytes:
        if buffer is not None or endianness is not None or use_version_2:
            return super().serialize(buffer=buffer, endianness=endianness, use_version_2=use_version_2)
        return _CDR_LE_HEADER + _pack(_STATE_CDR, _state_values(self), self)

    # At 500 Hz, building and reading 35 MotorState_ objects per message cost ~0.25 ms on each
    # side. A message built by build_lowstate or received here keeps its flat values instead
    # ("_flat"); imu_state and motor_state become objects only when something reads them, and
    # from then on the objects are what counts (the flat list is dropped).

    def __getattr__(self, name):
        flat = self.__dict__.get("_flat") if name in ("imu_state", "motor_state") else None
        if flat is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        v = flat
        self.__dict__["imu_state"] = IMUState_(list(v[5:9]), list(v[9:12]), list(v[12:15]), list(v[15:18]), v[18])
        self.__dict__["motor_state"] = [
            MotorState_(v[k], v[k + 1], v[k + 2], v[k + 3], v[k + 4], [v[k + 5], v[k + 6]], v[k + 7],
                        [v[k + 8], v[k + 9]], v[k + 10], list(v[k + 11 : k + 15]))
            for k in range(_STATE_HEAD, _SV_REMOTE, _STATE_PER_MOTOR)
        ]
        del self.__dict__["_flat"]
        return self.__dict__[name]

    @classmethod
    def _from_flat(cls, values, msg: "FastLowState_ | None" = None) -> "FastLowState_":
        """A message (``msg`` reused) holding ``values``; top-level fields set from them."""
        if msg is None:
            msg = cls.__new__(cls)
        d = msg.__dict__
        d.pop("imu_state", None)
        d.pop("motor_state", None)
        d["_flat"] = values
        v = values
        d["version"], d["mode_pr"], d["mode_machine"], d["tick"] = [v[0], v[1]], v[2], v[3], v[4]
        d["wireless_remote"] = bytes(v[_SV_REMOTE:_SV_RESERVE])  # the SDK decodes uint8 arrays as bytes
        d["reserve"], d["crc"] = list(v[_SV_RESERVE:_SV_CRC]), v[_SV_CRC]
        return msg

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2=None) -> "FastLowState_":
        if not (has_header and data[:2] == _CDR_LE_HEADER[:2] and len(data) >= 4 + _STATE_CDR.size):
            return super().deserialize(data, has_header=has_header, use_version_2=use_version_2)
        return cls._from_flat(_STATE_CDR.unpack_from(data, 4))


# Either class is accepted wherever a LowCmd_/LowState_ is expected.
LOWCMD_TYPES = (LowCmd_, FastLowCmd_)
LOWSTATE_TYPES = (LowState_, FastLowState_)


def new_lowcmd() -> FastLowCmd_:
    """An all-zero LowCmd_ (every motor disabled, crc 0)."""
    return FastLowCmd_(0, 0, [MotorCmd_(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0) for _ in range(NUM_SLOTS)], [0, 0, 0, 0], 0)


def new_lowstate() -> FastLowState_:
    """An all-zero LowState_ (identity IMU quaternion, crc 0)."""
    imu = IMUState_([1.0, 0.0, 0.0, 0.0], [0.0] * 3, [0.0] * 3, [0.0] * 3, 0)
    motors = [MotorState_(0, 0.0, 0.0, 0.0, 0.0, [0, 0], 0.0, [0, 0], 0, [0, 0, 0, 0]) for _ in range(NUM_SLOTS)]
    return FastLowState_([0, 0], 0, 0, 0, imu, motors, bytes(REMOTE_BYTES), [0, 0, 0, 0], 0)


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
