"""The Unitree G1 low-level wire codec (unitree_hg LowCmd_/LowState_): struct layouts, CRC and
the fast message types; ``gmt_ros.adapters.lowlevel`` converts between them and the core's types.

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
import struct
import zlib
from dataclasses import dataclass

import cyclonedds.idl as idl
import cyclonedds.idl.annotations as annotate
import cyclonedds.idl.types as types
import numpy as np
from unitree_sdk2py.idl.unitree_hg.msg.dds_ import IMUState_, LowCmd_, LowState_, MotorCmd_, MotorState_

from gmt_ros.core import g1

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


def _lowcmd_objects(v) -> dict:
    return {"motor_cmd": [MotorCmd_(*v[k:k + _CMD_PER_MOTOR]) for k in range(2, _CV_RESERVE, _CMD_PER_MOTOR)]}


def _lowstate_objects(v) -> dict:
    return {
        "imu_state": IMUState_(list(v[5:9]), list(v[9:12]), list(v[12:15]), list(v[15:18]), v[18]),
        "motor_state": [
            MotorState_(v[k], v[k + 1], v[k + 2], v[k + 3], v[k + 4], [v[k + 5], v[k + 6]], v[k + 7],
                        [v[k + 8], v[k + 9]], v[k + 10], list(v[k + 11 : k + 15]))
            for k in range(_STATE_HEAD, _SV_REMOTE, _STATE_PER_MOTOR)
        ],
    }


def _objects_from_flat(msg, name: str, build):
    """``__getattr__`` of a fast message holding flat values: the member objects ``build(flat)``
    returns are made when one is first read; from then on they count (the flat list is dropped)."""
    flat = msg.__dict__.get("_flat")
    objects = build(flat) if flat is not None and name in ("motor_cmd", "imu_state", "motor_state") else None
    if objects is None or name not in objects:
        raise AttributeError(f"{type(msg).__name__!r} object has no attribute {name!r}")
    msg.__dict__.update(objects)
    del msg.__dict__["_flat"]
    return objects[name]


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
        return _objects_from_flat(self, name, _lowcmd_objects)

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
        return _objects_from_flat(self, name, _lowstate_objects)

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
