"""Domain randomisation (DR) for sim2sim: ranges, one episode's draw, and where each value acts.

Three pieces:

* :class:`DomainRandomization` - the validated ranges of one preset (``config/randomization.yaml``
  or a YAML file of one preset). ``draw(seed)`` gives one episode's values;
  ``DomainRandomization.from_preset(name_or_path, seed)`` does both in one call.
* :class:`DrawnParameters` - one episode's values, frozen; ``as_dict()`` is JSON-friendly (run
  reports embed it) and ``from_dict`` reads it back, so a reported episode can be replayed.
* Where the values act: model-level ones in ``sim2sim.randomized_model`` (an ``MjSpec`` edit
  before compiling, friction as a direct ``MjModel`` edit after it); runtime ones inside
  :class:`sim2sim.simulator.G1Sim` (``step``/``state``), using ``sim2sim.runtime_randomization``
  (``DelayLine``, ``apply_sensor_errors``), which the DDS sim node can reuse.

Draws are deterministic: each parameter has its own random stream derived from the episode seed
and the parameter's name (``np.random.SeedSequence(seed, spawn_key=(crc32(name),))``), so adding
or removing one parameter in a preset does not change the values drawn for the others.

Parameters (YAML key: what one episode draws, where it acts):

======================  ==================================================================
friction                sliding friction of the 8 sole contact spheres (Menagerie: 0.6; they
                        have contact priority over the floor, so theirs is the contact's).
base_mass_kg            mass added to the pelvis, the floating base (legged_gym's "base").
base_com_offset_m       per axis: shift of the pelvis centre of mass (pelvis frame).
gravity_offset_mps2     per axis: added to gravity (0, 0, -9.81).
terrain_height_m        bump amplitude a: the flat floor becomes a heightfield (see randomized_model.TERRAIN_*)
                        of independent uniform heights per 0.1 m grid point in [-a, 0]; the
                        bump tops are at z = 0, so a robot placed on z = 0 is never inside the
                        ground, and settles at most a lower. The plane stays 1 mm under the
                        lowest bump to catch anything leaving the field. a = 0: flat plane.
push_velocity_mps       per horizontal axis: velocity kick added to the whole robot (pelvis
                        free joint, world x, y) at each push ...
push_interval_s         ... the first push this long after t = 0, then each one this long after
                        the previous (each interval drawn anew), up to PUSH_HORIZON_S.
motor_strength          per joint: the motor torque is strength × PD, then clipped to ±tau_max
                        (legged_gym's order; the reported joint_tau is the applied torque).
kp_scale, kd_scale      per joint: the motor driver's gain error on the commanded kp, kd.
action_delay_s          commands reach the motors this much later (whole physics steps).
command_delay_s         the command link: a further constant delay ...
command_jitter_s        ... plus, per command, a uniform extra delay in [0, drawn value];
command_drop_prob       each command is lost with this probability (the motors keep the last).
state_delay_s           the state link: a read returns the state this much older ...
state_jitter_s          ... plus, per read, a uniform extra age in [0, drawn value];
state_drop_prob         with this probability a read finds nothing newer than the last read
                        returned (all messages since were lost) and returns that read again.
gyro_bias_radps         per axis, constant; gyro_noise_radps: white-noise std per read.
attitude_bias_rad       roll, pitch, yaw of a constant IMU orientation error (body frame);
attitude_noise_rad      per-read random rotation (std per axis) on top.
accel_noise_mps2        accelerometer white-noise std per read.
joint_pos_offset_rad    per joint, constant encoder calibration error: the reported joint
                        position and the motor driver's PD both see q + offset.
joint_pos_noise_rad     encoder white noise per read (reported state only, not the PD).
joint_vel_noise_radps   joint velocity white noise per read (reported state only).
======================  ==================================================================

Delays are rounded to whole physics steps by the simulator; link messages never overtake each
other. Ground-truth readings of G1Sim (root_pose, root_velocity, body_positions, applied_torque)
are never disturbed: only ``state()`` - what the robot reports - is.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gmt_ros.core import g1
from gmt_ros.core.paths import config_dir

PRESETS_FILE = "randomization.yaml"
PUSH_HORIZON_S = 120.0  # pushes are drawn up to here; longer than any shipped clip (≤ 40 s)

_N = g1.NUM_BODY_JOINTS


# -- the parameter table ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One randomisable quantity: its YAML key, how many values one draw gives, allowed bounds."""

    name: str
    size: int  # 1 scalar, 2 horizontal axes, 3 axes, 29 joints
    low: float  # bounds any range must stay within
    high: float
    low_open: bool = False  # True: low itself is not allowed (e.g. friction 0)

    def check(self, lo: float, hi: float, origin: str) -> None:
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{origin}: {self.name} range [{lo}, {hi}] must be finite")
        if lo > hi:
            raise ValueError(f"{origin}: {self.name} range [{lo}, {hi}] has low > high")
        below = lo <= self.low if self.low_open else lo < self.low
        if below or hi > self.high:
            bracket = "(" if self.low_open else "["
            raise ValueError(f"{origin}: {self.name} range [{lo}, {hi}] is outside the allowed "
                             f"{bracket}{self.low}, {self.high}]")


PARAMETERS: dict[str, Param] = {p.name: p for p in (
    Param("friction", 1, 0.0, 5.0, low_open=True),
    Param("base_mass_kg", 1, -3.8, 20.0),  # the pelvis weighs 3.813 kg
    Param("base_com_offset_m", 3, -0.2, 0.2),
    Param("gravity_offset_mps2", 3, -2.0, 2.0),
    Param("terrain_height_m", 1, 0.0, 0.2),
    Param("push_velocity_mps", 2, -5.0, 5.0),
    Param("push_interval_s", 1, 0.01, 1000.0),
    Param("motor_strength", _N, 0.0, 3.0, low_open=True),
    Param("kp_scale", _N, 0.0, 3.0),
    Param("kd_scale", _N, 0.0, 3.0),
    Param("action_delay_s", 1, 0.0, 1.0),
    Param("command_delay_s", 1, 0.0, 1.0),
    Param("command_jitter_s", 1, 0.0, 1.0),
    Param("command_drop_prob", 1, 0.0, 0.9),
    Param("state_delay_s", 1, 0.0, 1.0),
    Param("state_jitter_s", 1, 0.0, 1.0),
    Param("state_drop_prob", 1, 0.0, 0.9),
    Param("gyro_bias_radps", 3, -1.0, 1.0),
    Param("gyro_noise_radps", 1, 0.0, 1.0),
    Param("attitude_bias_rad", 3, -0.5, 0.5),
    Param("attitude_noise_rad", 1, 0.0, 0.5),
    Param("accel_noise_mps2", 1, 0.0, 5.0),
    Param("joint_pos_offset_rad", _N, -0.5, 0.5),
    Param("joint_pos_noise_rad", 1, 0.0, 0.5),
    Param("joint_vel_noise_radps", 1, 0.0, 5.0),
)}


# -- one episode's values ----------------------------------------------------------------------------

def _ones() -> tuple[float, ...]:
    return (1.0,) * _N


def _zeros(n: int):
    return lambda: (0.0,) * n


@dataclass(frozen=True)
class DrawnParameters:
    """One episode's randomisation. The defaults are the undisturbed simulator (no effect)."""

    preset: str = "none"
    seed: int = 0
    friction: float | None = None  # None: the model's own sole friction
    base_mass_kg: float = 0.0
    base_com_offset_m: tuple[float, ...] = field(default_factory=_zeros(3))
    gravity_offset_mps2: tuple[float, ...] = field(default_factory=_zeros(3))
    terrain_height_m: float = 0.0
    terrain_seed: int = 0
    push_times_s: tuple[float, ...] = ()
    push_velocities_mps: tuple[tuple[float, float], ...] = ()
    motor_strength: tuple[float, ...] = field(default_factory=_ones)
    kp_scale: tuple[float, ...] = field(default_factory=_ones)
    kd_scale: tuple[float, ...] = field(default_factory=_ones)
    action_delay_s: float = 0.0
    command_delay_s: float = 0.0
    command_jitter_s: float = 0.0
    command_drop_prob: float = 0.0
    state_delay_s: float = 0.0
    state_jitter_s: float = 0.0
    state_drop_prob: float = 0.0
    gyro_bias_radps: tuple[float, ...] = field(default_factory=_zeros(3))
    gyro_noise_radps: float = 0.0
    attitude_bias_rad: tuple[float, ...] = field(default_factory=_zeros(3))
    attitude_noise_rad: float = 0.0
    accel_noise_mps2: float = 0.0
    joint_pos_offset_rad: tuple[float, ...] = field(default_factory=_zeros(_N))
    joint_pos_noise_rad: float = 0.0
    joint_vel_noise_radps: float = 0.0
    runtime_seed: int = 0  # seeds the per-read / per-command randomness (noise, jitter, drops)

    def __post_init__(self):
        if not isinstance(self.preset, str):
            raise ValueError(f"DrawnParameters.preset must be a name, got {self.preset!r}")
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"DrawnParameters.{name} must be a non-negative integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in _NUMBER_FIELDS:
            value = getattr(self, name)
            if value is None and name == "friction":
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != () or not np.isfinite(arr):
                raise ValueError(f"DrawnParameters.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(arr))
        sizes = dict(_VECTOR_FIELDS, push_times_s=len(self.push_times_s), push_velocities_mps=2 * len(self.push_times_s))
        for name, size in sizes.items():
            arr = np.asarray(getattr(self, name), dtype=np.float64).ravel()
            if arr.size != size or not np.all(np.isfinite(arr)):
                raise ValueError(f"DrawnParameters.{name} must hold {size} finite numbers, got {getattr(self, name)!r}")
            value = tuple(float(x) for x in arr)
            if name == "push_velocities_mps":
                value = tuple(zip(value[0::2], value[1::2]))
            object.__setattr__(self, name, value)
        times = np.asarray(self.push_times_s)
        if np.any(times <= 0) or np.any(np.diff(times) <= 0):
            raise ValueError(f"DrawnParameters.push_times_s must be positive and increasing, got {self.push_times_s}")
        if self.friction is not None and not self.friction > 0:
            raise ValueError(f"DrawnParameters.friction must be positive, got {self.friction}")
        if min(self.motor_strength) <= 0 or min(self.kp_scale) < 0 or min(self.kd_scale) < 0:
            raise ValueError("DrawnParameters: motor_strength must be > 0 and kp_scale, kd_scale >= 0")
        for name in _NUMBER_FIELDS:
            value = getattr(self, name)
            if name not in ("friction", "base_mass_kg") and value < 0:
                raise ValueError(f"DrawnParameters.{name} must be >= 0, got {value}")
        for name in ("command_drop_prob", "state_drop_prob"):
            if not getattr(self, name) < 1.0:
                raise ValueError(f"DrawnParameters.{name} must be in [0, 1), got {getattr(self, name)}")

    # What kind of effects there are decides how G1Sim is built and stepped.
    def _differs(self, names) -> bool:
        return any(getattr(self, n) != getattr(_NEUTRAL, n) for n in names)

    @property
    def has_model_effects(self) -> bool:
        return self._differs(_MODEL_FIELDS)

    @property
    def has_sensor_errors(self) -> bool:
        return self._differs(_SENSOR_FIELDS)

    @property
    def has_runtime_effects(self) -> bool:
        skip = set(_MODEL_FIELDS) | {"preset", "seed", "terrain_seed", "runtime_seed"}
        return self._differs([f.name for f in dataclasses.fields(self) if f.name not in skip])

    @property
    def is_neutral(self) -> bool:
        return not (self.has_model_effects or self.has_runtime_effects)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: numbers, lists and None only."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrawnParameters:
        """Inverse of :meth:`as_dict` (an unknown key is a ValueError naming it)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"DrawnParameters.from_dict needs a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DrawnParameters keys {unknown}; known: {sorted(known)}")
        return cls(**dict(data))


_INT_FIELDS = ("seed", "terrain_seed", "runtime_seed")
_NUMBER_FIELDS = tuple(f.name for f in dataclasses.fields(DrawnParameters)
                       if f.name == "friction" or isinstance(f.default, float))
_VECTOR_FIELDS = {"base_com_offset_m": 3, "gravity_offset_mps2": 3, "motor_strength": _N, "kp_scale": _N,
                  "kd_scale": _N, "gyro_bias_radps": 3, "attitude_bias_rad": 3, "joint_pos_offset_rad": _N}
_MODEL_FIELDS = ("friction", "base_mass_kg", "base_com_offset_m", "gravity_offset_mps2", "terrain_height_m")
_SENSOR_FIELDS = ("gyro_bias_radps", "gyro_noise_radps", "attitude_bias_rad", "attitude_noise_rad",
                  "accel_noise_mps2", "joint_pos_offset_rad", "joint_pos_noise_rad", "joint_vel_noise_radps")
_NEUTRAL = DrawnParameters()


# -- ranges and presets ------------------------------------------------------------------------------

def _param_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),)))


class DomainRandomization:
    """The validated ranges of one preset: ``{parameter name: (low, high)}``."""

    def __init__(self, ranges: Mapping[str, Any], name: str = "custom", origin: str | None = None):
        origin = origin or f"randomization preset {name!r}"
        if ranges is None:
            ranges = {}
        if not isinstance(ranges, Mapping):
            raise ValueError(f"{origin}: expected a mapping of parameter names to [low, high], "
                             f"got {type(ranges).__name__}")
        unknown = sorted(str(k) for k in ranges if k not in PARAMETERS)
        if unknown:
            raise ValueError(f"{origin}: unknown randomization parameter(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(PARAMETERS)}")
        parsed: dict[str, tuple[float, float]] = {}
        for key, value in ranges.items():
            parsed[key] = _parse_range(key, value, origin)
        if ("push_velocity_mps" in parsed) != ("push_interval_s" in parsed):
            raise ValueError(f"{origin}: push_velocity_mps and push_interval_s must be given together")
        self.name = name
        self.ranges = parsed

    def __repr__(self) -> str:
        return f"DomainRandomization({self.name!r}, {self.ranges})"

    # -- loading ----------------------------------------------------------------------------------

    @staticmethod
    def preset_file() -> Path:
        return config_dir() / PRESETS_FILE

    @classmethod
    def preset_names(cls) -> tuple[str, ...]:
        return tuple(_read_presets(cls.preset_file()))

    @classmethod
    def load(cls, name_or_path: str | Path) -> DomainRandomization:
        """A preset of ``config/randomization.yaml`` by name, or a YAML file holding one preset
        (a mapping of parameter names to ranges)."""
        text = str(name_or_path)
        path = Path(text)
        looks_like_path = isinstance(name_or_path, Path) or path.suffix in (".yaml", ".yml") or "/" in text
        if not looks_like_path:
            presets = _read_presets(cls.preset_file())
            if text not in presets:
                raise ValueError(f"unknown randomization preset {text!r}; available: {', '.join(presets)} "
                                 f"(in {cls.preset_file()}), or give a path to a YAML file")
            return cls(presets[text], name=text, origin=f"preset {text!r} in {cls.preset_file()}")
        if not path.is_file():
            raise ValueError(f"randomization file {path} does not exist")
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        return cls(data, name=path.stem, origin=str(path))

    @classmethod
    def from_preset(cls, name_or_path: str | Path, seed: int) -> DrawnParameters:
        """One episode's values: ``load(name_or_path).draw(seed)``."""
        return cls.load(name_or_path).draw(seed)

    # -- drawing ----------------------------------------------------------------------------------

    def draw(self, seed: int, push_horizon_s: float = PUSH_HORIZON_S) -> DrawnParameters:
        """Draw one episode's values from ``seed`` (same seed, same values)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        seed = int(seed)
        values: dict[str, Any] = {}
        for key, (lo, hi) in self.ranges.items():
            if key in ("push_velocity_mps", "push_interval_s"):
                continue
            param = PARAMETERS[key]
            drawn = _param_rng(seed, key).uniform(lo, hi, size=param.size)
            values[key] = float(drawn[0]) if param.size == 1 else tuple(float(x) for x in drawn)
        if "terrain_height_m" in values:
            values["terrain_seed"] = int(_param_rng(seed, "terrain_seed").integers(0, 2**31))
        if "push_interval_s" in self.ranges:
            times, velocities = self._draw_pushes(seed, push_horizon_s)
            values["push_times_s"], values["push_velocities_mps"] = times, velocities
        values["runtime_seed"] = int(_param_rng(seed, "runtime_seed").integers(0, 2**31))
        return DrawnParameters(preset=self.name, seed=seed, **values)

    def _draw_pushes(self, seed: int, horizon_s: float):
        rng = _param_rng(seed, "pushes")
        i_lo, i_hi = self.ranges["push_interval_s"]
        v_lo, v_hi = self.ranges["push_velocity_mps"]
        times, velocities = [], []
        t = float(rng.uniform(i_lo, i_hi))
        while t < horizon_s:
            times.append(t)
            velocities.append(tuple(float(v) for v in rng.uniform(v_lo, v_hi, size=2)))
            t += float(rng.uniform(i_lo, i_hi))
        return tuple(times), tuple(velocities)


def _parse_range(key: str, value: Any, origin: str) -> tuple[float, float]:
    if isinstance(value, bool):
        raise ValueError(f"{origin}: {key} must be [low, high] or a number, got {value!r}")
    if isinstance(value, (int, float)):
        lo = hi = float(value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{origin}: {key} must be [low, high] or a number, got {value!r}")
    PARAMETERS[key].check(lo, hi, origin)
    return lo, hi


def _read_presets(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"randomization presets file {path} not found")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, Mapping) or set(data) != {"presets"} or not isinstance(data["presets"], Mapping):
        raise ValueError(f"{path}: expected exactly one top-level key 'presets' mapping names to presets")
    return dict(data["presets"])
