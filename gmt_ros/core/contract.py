"""Policy contracts: everything a deployment must know about one policy artifact, as data.

A contract is a YAML file beside the ONNX model (``models/<name>/contract.yaml``). It names the
graph's input/output, the joints the policy drives (policy order), the action mapping
``target = default_pose + action_scale * clip(action, -action_clip, action_clip)``, PD gains, joints
the policy does not drive but which must be held (``held_joints``), the reference frames it looks at
(``future_offsets``, in control steps), how that reference is prepared (``reference``: velocities,
quaternions, past the clip's end; see ``reference``) and the observation layout (see
``observation``). Every contract is validated when it is loaded; ``check_against_onnx`` compares
it with the graph.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from gmt_ros.core import g1, paths
from gmt_ros.core.command_table import CommandTable
from gmt_ros.core.reference import ReferenceConventions, parse_conventions

_REQUIRED = (
    "name", "onnx", "input_name", "output_name", "obs_dim", "action_dim", "rate_hz", "joint_names",
    "default_pose", "kp", "kd", "torque_limit", "action_scale", "action_clip", "future_offsets",
    "history_length", "reference", "observation",
)
_OPTIONAL = ("held_joints", "onnx_sha256", "description")
_BARE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# The shipped policy every command, node and launch file uses when none is named.
DEFAULT_POLICY = "twist2_student"


@dataclass(frozen=True)
class TermSpec:
    """One observation term as the contract names it, with its parameters (e.g. ``scale``)."""

    name: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ObsBlock:
    """One block of the observation layout: exactly one of ``terms`` (computed now),
    ``history_of`` (earlier values of those terms blocks, oldest first) or ``copy_of``."""

    name: str
    terms: tuple[TermSpec, ...] = ()
    history_of: tuple[str, ...] = ()
    copy_of: str | None = None


@dataclass(frozen=True)
class HeldJoint:
    """A motor the policy does not drive, held at ``target`` with its own gains."""

    name: str
    target: float
    kp: float
    kd: float


@dataclass(frozen=True)
class ContractId:
    """Which contract: its name and the sha256 of its content (the parsed YAML, so comments and
    layout do not count, every value does). ``wire`` is how it travels with each PD target (the
    JointState's header.frame_id, see ``gmt_ros.nodes.policy_node``)."""

    name: str
    sha256: str

    WIRE_HASH_CHARS = 16  # 64 bits: tells versions of a contract apart (not a security measure)

    @property
    def wire(self) -> str:
        return f"{self.name}@{self.sha256[:self.WIRE_HASH_CHARS]}"

    def __str__(self) -> str:
        return self.wire


def content_sha256(data: Any) -> str:
    """sha256 of a parsed YAML document in a canonical JSON form (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class PolicyContract:
    name: str
    source: str  # where the contract came from, for messages
    onnx_path: Path
    onnx_sha256: str | None
    input_name: str
    output_name: str
    obs_dim: int
    action_dim: int
    rate_hz: float
    joint_names: tuple[str, ...]
    default_pose: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    torque_limit: np.ndarray
    action_scale: np.ndarray
    action_clip: float
    held_joints: tuple[HeldJoint, ...]
    future_offsets: tuple[int, ...]
    history_length: int
    observation: tuple[ObsBlock, ...]
    reference: ReferenceConventions
    description: str = ""
    sha256: str = ""  # content_sha256 of the YAML document it was parsed from

    @property
    def identity(self) -> ContractId:
        return ContractId(self.name, self.sha256)

    @cached_property
    def command_table(self) -> CommandTable:
        """The 29-slot pose and gain table every command of this policy is built from (derived
        once per contract object: policy, bridge and supervisor use this one)."""
        return CommandTable.from_contract(self)

    @property
    def control_dt(self) -> float:
        return 1.0 / self.rate_hz

    @property
    def slots(self) -> np.ndarray:
        """Motor slots of the policy joints, in policy order."""
        return g1.slots_of(self.joint_names)

    @property
    def held_slots(self) -> np.ndarray:
        return g1.slots_of([h.name for h in self.held_joints])


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


class _Reader:
    """Typed field access on the raw YAML mapping; every error names the contract and field."""

    def __init__(self, data: Mapping[str, Any], origin: str):
        self.data = data
        self.origin = origin

    def fail(self, message: str) -> ValueError:
        return ValueError(f"contract {self.origin}: {message}")

    def string(self, key: str) -> str:
        value = self.data[key]
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key} must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, minimum: int) -> int:
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"{key} must be an integer >= {minimum}, got {value!r}")
        return value

    def positive(self, key: str) -> float:
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
            raise self.fail(f"{key} must be a positive number, got {value!r}")
        return float(value)

    def per_joint(self, key: str, names: tuple[str, ...], allow_scalar: bool = False) -> np.ndarray:
        value = self.data[key]
        if allow_scalar and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value] * len(names)
        if not isinstance(value, list):
            raise self.fail(f"{key} must be a list of {len(names)} numbers (one per joint), got {type(value).__name__}")
        if len(value) != len(names):
            raise self.fail(f"{key} has {len(value)} entries but joint_names has {len(names)}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise self.fail(f"{key} must contain only numbers")
        arr = np.array(value, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise self.fail(f"{key} is not finite for {names[bad[0]]}")
        return arr


def _parse_term(entry: Any, block: str, r: _Reader) -> TermSpec:
    if isinstance(entry, str):
        return TermSpec(entry, MappingProxyType({}))
    if isinstance(entry, Mapping) and isinstance(entry.get("term"), str):
        params = {k: v for k, v in entry.items() if k != "term"}
        return TermSpec(entry["term"], MappingProxyType(params))
    raise r.fail(f"observation block {block!r}: a term must be a name or a mapping with 'term', got {entry!r}")


def _parse_observation(r: _Reader) -> tuple[ObsBlock, ...]:
    raw = r.data["observation"]
    if not isinstance(raw, list) or not raw:
        raise r.fail("observation must be a non-empty list of blocks")
    blocks: list[ObsBlock] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("block"), str):
            raise r.fail(f"observation[{i}] must be a mapping with a 'block' name, got {entry!r}")
        name = entry["block"]
        if any(b.name == name for b in blocks):
            raise r.fail(f"observation block name {name!r} is used twice")
        extra = sorted(set(entry) - {"block", "terms", "history_of", "copy_of"})
        if extra:
            raise r.fail(f"observation block {name!r}: unknown key(s) {extra}")
        kinds = [k for k in ("terms", "history_of", "copy_of") if k in entry]
        if len(kinds) != 1:
            raise r.fail(f"observation block {name!r} needs exactly one of terms / history_of / copy_of, got {kinds}")
        kind = kinds[0]
        if kind == "terms":
            if not isinstance(entry["terms"], list) or not entry["terms"]:
                raise r.fail(f"observation block {name!r}: terms must be a non-empty list")
            blocks.append(ObsBlock(name, terms=tuple(_parse_term(t, name, r) for t in entry["terms"])))
        elif kind == "history_of":
            src = entry["history_of"]
            if not isinstance(src, list) or not src or not all(isinstance(s, str) for s in src):
                raise r.fail(f"observation block {name!r}: history_of must be a non-empty list of block names")
            blocks.append(ObsBlock(name, history_of=tuple(src)))
        else:
            if not isinstance(entry["copy_of"], str):
                raise r.fail(f"observation block {name!r}: copy_of must be a block name")
            blocks.append(ObsBlock(name, copy_of=entry["copy_of"]))
    return tuple(blocks)


def _parse_held(r: _Reader, policy_joints: tuple[str, ...]) -> tuple[HeldJoint, ...]:
    raw = r.data.get("held_joints") or {}
    if not isinstance(raw, Mapping):
        raise r.fail("held_joints must map joint names to {target, kp, kd}")
    held = []
    for name, spec in raw.items():
        if name not in g1.SLOT_OF:
            raise r.fail(f"held_joints: unknown G1 joint name {name!r}")
        if name in policy_joints:
            raise r.fail(f"held_joints: {name} is also a policy joint")
        if not isinstance(spec, Mapping) or set(spec) != {"target", "kp", "kd"}:
            raise r.fail(f"held_joints: {name} needs exactly target, kp and kd, got {spec!r}")
        values = {}
        for key in ("target", "kp", "kd"):
            v = spec[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise r.fail(f"held_joints: {name}.{key} must be a finite number, got {v!r}")
            values[key] = float(v)
        if values["kp"] < 0 or values["kd"] < 0:
            raise r.fail(f"held_joints: {name} has a negative gain (kp {values['kp']}, kd {values['kd']})")
        slot = g1.SLOT_OF[name]
        if not g1.Q_MIN[slot] <= values["target"] <= g1.Q_MAX[slot]:
            raise r.fail(f"held_joints: {name} target {values['target']} is outside "
                         f"[{g1.Q_MIN[slot]}, {g1.Q_MAX[slot]}]")
        held.append(HeldJoint(name, values["target"], values["kp"], values["kd"]))
    return tuple(held)


def _parse_reference(r: _Reader) -> ReferenceConventions:
    try:
        return parse_conventions(r.data["reference"])
    except ValueError as exc:
        raise r.fail(str(exc)) from None


def parse_contract(data: Any, base_dir: Path, origin: str) -> PolicyContract:
    """Build and validate a contract from its YAML mapping; ``base_dir`` anchors the ONNX path."""
    r = _Reader(data if isinstance(data, Mapping) else {}, origin)
    if not isinstance(data, Mapping):
        raise r.fail(f"top level must be a mapping, got {type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise r.fail(f"missing field(s) {missing}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise r.fail(f"unknown field(s) {unknown}")

    names = data["joint_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise r.fail("joint_names must be a non-empty list of G1 joint names")
    for n in names:
        if n not in g1.SLOT_OF:
            raise r.fail(f"unknown G1 joint name {n!r} in joint_names")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise r.fail(f"joint_names lists {dup} more than once")
    names = tuple(names)
    slots = g1.slots_of(names)

    action_dim = r.integer("action_dim", 1)
    if action_dim != len(names):
        raise r.fail(f"action_dim {action_dim} differs from the {len(names)} joint_names")

    default_pose = r.per_joint("default_pose", names)
    outside = np.flatnonzero((default_pose < g1.Q_MIN[slots]) | (default_pose > g1.Q_MAX[slots]))
    if outside.size:
        i = outside[0]
        raise r.fail(f"default_pose {default_pose[i]} for {names[i]} is outside its range "
                     f"[{g1.Q_MIN[slots[i]]}, {g1.Q_MAX[slots[i]]}]")
    gains = {}
    for key in ("kp", "kd"):
        gains[key] = r.per_joint(key, names)
        neg = np.flatnonzero(gains[key] < 0)
        if neg.size:
            raise r.fail(f"{key} is negative for {names[neg[0]]} ({gains[key][neg[0]]})")
    torque_limit = r.per_joint("torque_limit", names)
    for i, slot in enumerate(slots):
        if not 0 < torque_limit[i] <= g1.TAU_MAX[slot]:
            raise r.fail(f"torque_limit for {names[i]} is {torque_limit[i]} N·m; it must be in "
                         f"(0, {g1.TAU_MAX[slot]}], the G1 motor limit")
    action_scale = r.per_joint("action_scale", names, allow_scalar=True)
    if np.any(action_scale <= 0):
        raise r.fail("action_scale must be positive")

    offsets = data["future_offsets"]
    if not isinstance(offsets, list) or not all(
        isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in offsets
    ):
        raise r.fail(f"future_offsets must be a list of non-negative integers (control steps), got {offsets!r}")
    if any(b <= a for a, b in itertools.pairwise(offsets)):
        raise r.fail(f"future_offsets must be strictly increasing, got {offsets}")

    held = _parse_held(r, names)
    uncovered = [n for n in g1.JOINT_NAMES if n not in names and n not in {h.name for h in held}]
    if uncovered:
        raise r.fail(f"joint(s) {uncovered} are neither driven by the policy nor listed in held_joints")

    sha = data.get("onnx_sha256")
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise r.fail(f"onnx_sha256 must be 64 lowercase hex digits, got {sha!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise r.fail("description must be a string")

    contract = PolicyContract(
        name=r.string("name"),
        source=origin,
        onnx_path=(Path(base_dir) / r.string("onnx")).resolve(),
        onnx_sha256=sha,
        input_name=r.string("input_name"),
        output_name=r.string("output_name"),
        obs_dim=r.integer("obs_dim", 1),
        action_dim=action_dim,
        rate_hz=r.positive("rate_hz"),
        joint_names=names,
        default_pose=_frozen(default_pose),
        kp=_frozen(gains["kp"]),
        kd=_frozen(gains["kd"]),
        torque_limit=_frozen(torque_limit),
        action_scale=_frozen(action_scale),
        action_clip=r.positive("action_clip"),
        held_joints=held,
        future_offsets=tuple(offsets),
        history_length=r.integer("history_length", 0),
        observation=_parse_observation(r),
        reference=_parse_reference(r),
        description=description,
        sha256=content_sha256(data),
    )
    has_history = any(b.history_of for b in contract.observation)
    if contract.history_length > 0 and not has_history:
        raise r.fail(f"history_length is {contract.history_length} but no observation block has history_of")

    from gmt_ros.core import observation  # the term registry lives there; it imports this module lazily

    try:
        width = observation.layout_width(contract)
    except ValueError as exc:
        raise r.fail(str(exc)) from None
    if width != contract.obs_dim:
        raise r.fail(f"the observation blocks add up to {width} values but obs_dim is {contract.obs_dim}")
    return contract


def resolve_contract_path(path_or_name: str | Path) -> Path:
    """A bare name (``twist2_student``) means ``models/<name>/contract.yaml``; anything else is a path."""
    text = str(path_or_name)
    if isinstance(path_or_name, Path) or "/" in text or text.endswith((".yaml", ".yml")) or not _BARE_NAME.match(text):
        return Path(path_or_name)
    return paths.models_dir() / text / "contract.yaml"


def available_contracts() -> list[str]:
    """Names of the contracts shipped under models/."""
    try:
        root = paths.models_dir()
    except FileNotFoundError:
        return []
    return sorted(p.parent.name for p in root.glob("*/contract.yaml"))


def load_contract(path_or_name: str | Path) -> PolicyContract:
    """Load and validate a contract from a YAML path or a bare model name."""
    path = resolve_contract_path(path_or_name)
    if not path.is_file():
        raise FileNotFoundError(f"policy contract {path} not found; shipped contracts: {available_contracts()}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"contract {path}: not valid YAML: {exc}") from None
    return parse_contract(data, path.parent, str(path))


def check_against_onnx(contract: PolicyContract, session, label: str | None = None) -> None:
    """Compare the contract with an onnxruntime session's graph; raise ValueError naming every
    mismatch (input/output names, widths, element type)."""
    label = label or contract.onnx_path.name
    problems = []

    def check(kind, args, name, width, field):
        names = [a.name for a in args]
        if len(args) != 1:
            problems.append(f"{label} has {kind}s {names}; a policy graph must have exactly one")
        match = [a for a in args if a.name == name]
        if not match:
            problems.append(f"contract says {kind}_name {name!r} but {label} {kind}s are {names}")
            return
        arg = match[0]
        shape = list(arg.shape)
        last = shape[-1] if shape else None
        if len(shape) != 2 or not isinstance(last, int):
            problems.append(f"{label} {kind} {name!r} has shape {shape}; expected [batch, {width}]")
        elif last != width:
            problems.append(f"contract says {field} {width} but {label} {kind} {name!r} has width {last}")
        if arg.type != "tensor(float)":
            problems.append(f"{label} {kind} {name!r} has type {arg.type}; expected tensor(float)")

    check("input", session.get_inputs(), contract.input_name, contract.obs_dim, "obs_dim")
    check("output", session.get_outputs(), contract.output_name, contract.action_dim, "action_dim")
    if problems:
        raise ValueError(f"policy {contract.name!r} does not match its ONNX graph: " + "; ".join(problems))
