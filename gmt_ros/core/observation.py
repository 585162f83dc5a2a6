"""Observation terms and the builder that assembles them in the order a policy contract gives.

A contract's ``observation`` is an ordered list of blocks (see ``contract.ObsBlock``):

- a *terms* block concatenates terms from the registry below. Robot terms read the robot state and
  the last action; reference terms read the reference motion and are evaluated once per future
  frame (the contract's ``future_offsets``), frame-major: all terms of frame 1, then of frame 2, ...
- a *history* block holds the values the named terms blocks had on the previous
  ``history_length`` steps, oldest first, current step excluded, zeros after a reset (as in the GMT
  and TWIST2 authors' deployment code, which fill their history deques with zeros);
- a *copy* block repeats a terms block's current value (TWIST2 appends its mimic block twice).

Conventions: the robot's orientation is the pelvis IMU quaternion; reference velocities arrive in
the world frame (``MotionFrames``) and are expressed in the reference root's own frame, i.e. rotated
by the inverse of the full root quaternion (roll and pitch included, not the heading-only frame):
both authors' motion servers use ``quat_rotate_inverse(root_rot, v)``. The reference quaternion may
be stored rather than unit length (a contract's ``reference.quaternions: as_stored``): the terms
then evaluate the authors' own expressions on it, which is what their policies saw — roll/pitch
``atan2(2(wx + yz), 1 - 2(x² + y²))`` and ``asin(2(wy - zx))``, and ``quat_rotate_inverse`` =
Rᵀv + 2(|q|² - 1)v (``reference.rotate_inverse_as_stored``); for a unit quaternion both are the
plain rotation.

Cost: ``build`` runs inside the 50 Hz control tick, on arrays of a few dozen values, where each
numpy call costs about a microsecond whatever its size. So the layout (every term's place in the
vector) is resolved once at construction, terms write straight into the output vector, quantities
several terms share (the reference roots' rotation matrices) are computed once per step
(``ObsInputs.reference_rotation``), and the history is one preallocated array shifted in
place rather than a deque concatenated on every step.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.state import RobotState

if TYPE_CHECKING:  # the contract imports this module to validate its layout
    from gmt_ros.core.contract import PolicyContract


@dataclass(frozen=True)
class ObsInputs:
    """Everything one observation is computed from."""

    state: RobotState
    reference: MotionFrames | None  # one frame per contract future offset; None without reference terms
    last_action: np.ndarray  # raw policy output of the previous step (before clipping)
    _shared: dict = field(default_factory=dict, repr=False, compare=False)  # per-step values several terms use

    def _reference(self) -> MotionFrames:
        if self.reference is None:
            raise ValueError("a reference term was computed without reference frames")
        return self.reference

    def reference_rotation(self) -> np.ndarray:
        """Rotation matrices (N, 3, 3) world ← reference root, computed once per step whichever
        terms ask (roll/pitch and the root-frame velocities all read them)."""
        rotation = self._shared.get("rotation")
        if rotation is None:
            rotation = self._shared["rotation"] = rotations.to_matrix(self._reference().root_quat)
        return rotation

    def reference_in_root_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference root linear and angular velocity (N, 3 each) in the reference root's own
        frame, by the authors' ``quat_rotate_inverse`` (Rᵀ v + 2 (|q|² - 1) v; Rᵀ v for a unit q)."""
        cached = self._shared.get("root_frame_vel")
        if cached is None:
            ref = self._reference()
            q = ref.root_quat
            vel = np.stack([ref.root_lin_vel, ref.root_ang_vel], axis=-1)  # (N, 3, 2): columns lin, ang
            rotated = self.reference_rotation().swapaxes(-1, -2) @ vel  # Rᵀ v: world → root
            rotated += (2.0 * ((q * q).sum(axis=-1) - 1.0))[:, None, None] * vel
            cached = self._shared["root_frame_vel"] = (rotated[..., 0], rotated[..., 1])
        return cached


def slot_index(slots: np.ndarray) -> slice | np.ndarray:
    """A slice when the slots are consecutive (a view instead of a fancy-index copy)."""
    if slots.size and np.array_equal(slots, np.arange(slots[0], slots[0] + slots.size)):
        return slice(int(slots[0]), int(slots[0]) + slots.size)
    return slots


class Term:
    """One named observation term with a size fixed by the contract.

    Every term takes an optional ``scale`` (multiplies the value); subclasses list further
    parameters in ``extra_params``. ``per_frame`` terms return one row per reference frame.
    """

    name: ClassVar[str]
    per_frame: ClassVar[bool] = False
    extra_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, contract: PolicyContract, params: Mapping[str, Any]):
        unknown = sorted(set(params) - {"scale"} - self.extra_params)
        if unknown:
            allowed = sorted({"scale"} | self.extra_params)
            raise ValueError(f"term {self.name!r}: unknown parameter(s) {unknown}; allowed: {allowed}")
        scale = params.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale):
            raise ValueError(f"term {self.name!r}: scale must be a finite number, got {scale!r}")
        self.scale = float(scale)
        self.size = self._size(contract)

    def _size(self, contract: PolicyContract) -> int:
        raise NotImplementedError

    def compute(self, inputs: ObsInputs) -> np.ndarray:
        value = self._value(inputs)
        return value * self.scale if self.scale != 1.0 else value

    def _value(self, inputs: ObsInputs) -> np.ndarray:
        raise NotImplementedError


# --- robot terms -----------------------------------------------------------------------------------


class BaseAngVel(Term):
    """Pelvis angular velocity from the IMU gyro, pelvis frame (3)."""

    name = "base_ang_vel"

    def _size(self, contract):
        return 3

    def _value(self, inputs):
        return np.asarray(inputs.state.imu_gyro, dtype=np.float64)


class BaseRollPitch(Term):
    """Roll and pitch of the pelvis IMU orientation (2)."""

    name = "base_roll_pitch"

    def _size(self, contract):
        return 2

    def _value(self, inputs):
        return rotations.to_rpy(inputs.state.imu_quat)[:2]


class _PolicyJointsTerm(Term):
    def _size(self, contract):
        self.slots = g1.slots_of(contract.joint_names)
        self._index = slot_index(self.slots)
        return len(self.slots)


class JointPosRel(_PolicyJointsTerm):
    """Policy joints' positions minus the contract's default pose (n joints)."""

    name = "joint_pos_rel"

    def _size(self, contract):
        self.default = np.asarray(contract.default_pose, dtype=np.float64)
        return super()._size(contract)

    def _value(self, inputs):
        return np.asarray(inputs.state.joint_pos, dtype=np.float64)[self._index] - self.default


class JointVel(_PolicyJointsTerm):
    """Policy joints' velocities (n joints); ``zero_joints`` lists joints reported as 0 (both
    authors hide the ankle velocities from the policy)."""

    name = "joint_vel"
    extra_params = frozenset({"zero_joints"})

    def __init__(self, contract, params):
        super().__init__(contract, params)
        zero = params.get("zero_joints", [])
        if not isinstance(zero, (list, tuple)) or not all(isinstance(n, str) for n in zero):
            raise ValueError(f"term {self.name!r}: zero_joints must be a list of joint names, got {zero!r}")
        missing = [n for n in zero if n not in contract.joint_names]
        if missing:
            raise ValueError(f"term {self.name!r}: zero_joints {missing} are not policy joints")
        self.keep = np.ones(self.size)
        self.keep[[list(contract.joint_names).index(n) for n in zero]] = 0.0

    def _value(self, inputs):
        return np.asarray(inputs.state.joint_vel, dtype=np.float64)[self._index] * self.keep


class LastAction(Term):
    """The policy's previous raw output, before clipping and scaling (action_dim)."""

    name = "last_action"

    def _size(self, contract):
        return contract.action_dim

    def _value(self, inputs):
        return np.asarray(inputs.last_action, dtype=np.float64)


# --- reference terms (one row per future frame) -------------------------------------------------------


class _ReferenceTerm(Term):
    per_frame = True


class RefRootHeight(_ReferenceTerm):
    """Reference root height above the world origin (1 per frame)."""

    name = "ref_root_height"

    def _size(self, contract):
        return 1

    def _value(self, inputs):
        return inputs.reference.root_pos[:, 2:3]


class RefRootRollPitch(_ReferenceTerm):
    """Reference root roll and pitch (Z-Y-X Euler angles) (2 per frame)."""

    name = "ref_root_roll_pitch"

    def _size(self, contract):
        return 2

    def _value(self, inputs):
        # rotations.to_rpy's roll and pitch, read from the shared matrices (bit-identical: R[2, 1] =
        # 2 (yz + wx), R[2, 2] = 1 - 2 (x² + y²), -R[2, 0] = 2 (wy - xz))
        r = inputs.reference_rotation()
        out = np.empty((r.shape[0], 2))
        out[:, 0] = np.arctan2(r[:, 2, 1], r[:, 2, 2])
        out[:, 1] = np.arcsin(np.minimum(np.maximum(-r[:, 2, 0], -1.0), 1.0))
        return out


class RefRootLinVel(_ReferenceTerm):
    """Reference root linear velocity in the root frame (3 per frame)."""

    name = "ref_root_lin_vel"

    def _size(self, contract):
        return 3

    def _value(self, inputs):
        return inputs.reference_in_root_frame()[0]


class RefRootLinVelXY(_ReferenceTerm):
    """x and y of the reference root linear velocity in the root frame (2 per frame)."""

    name = "ref_root_lin_vel_xy"

    def _size(self, contract):
        return 2

    def _value(self, inputs):
        return inputs.reference_in_root_frame()[0][:, :2]


class RefRootYawRate(_ReferenceTerm):
    """z of the reference root angular velocity in the root frame (1 per frame)."""

    name = "ref_root_yaw_rate"

    def _size(self, contract):
        return 1

    def _value(self, inputs):
        return inputs.reference_in_root_frame()[1][:, 2:3]


class RefJointPos(_ReferenceTerm, _PolicyJointsTerm):
    """Reference positions of the policy joints, absolute (n joints per frame)."""

    name = "ref_joint_pos"

    def _value(self, inputs):
        return inputs.reference.joint_pos[:, self._index]


TERMS: dict[str, type[Term]] = {
    cls.name: cls
    for cls in (
        BaseAngVel,
        BaseRollPitch,
        JointPosRel,
        JointVel,
        LastAction,
        RefRootHeight,
        RefRootRollPitch,
        RefRootLinVel,
        RefRootLinVelXY,
        RefRootYawRate,
        RefJointPos,
    )
}


def make_term(spec, contract: PolicyContract) -> Term:
    """Instantiate a contract term spec; an unknown name is an error listing the known ones."""
    cls = TERMS.get(spec.name)
    if cls is None:
        raise ValueError(f"unknown observation term {spec.name!r}; known: {', '.join(sorted(TERMS))}")
    return cls(contract, spec.params)


# --- the assembled layout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Where one term (or a history/copy block) sits in the observation vector."""

    block: str
    term: str
    start: int
    stop: int


class _TermsBlock:
    def __init__(self, block, contract):
        self.name = block.name
        self.terms = []
        for spec in block.terms:
            try:
                self.terms.append(make_term(spec, contract))
            except ValueError as exc:
                raise ValueError(f"observation block {block.name!r}: {exc}") from None
        kinds = {t.per_frame for t in self.terms}
        if len(kinds) > 1:
            raise ValueError(
                f"observation block {block.name!r} mixes reference terms (one row per future frame) "
                "with robot-state terms; put them in separate blocks"
            )
        self.per_frame = kinds == {True}
        self.frames = len(contract.future_offsets) if self.per_frame else 1
        if self.per_frame and self.frames == 0:
            raise ValueError(f"observation block {block.name!r} has reference terms but future_offsets is empty")
        self.row = sum(t.size for t in self.terms)
        self.size = self.row * self.frames
        # (term, first column, last column) within a row: frame-major [frame 0 terms | frame 1 terms | ...]
        self._columns = []
        col = 0
        for t in self.terms:
            self._columns.append((t, col, col + t.size))
            col += t.size

    def write(self, inputs: ObsInputs, out: np.ndarray) -> None:
        """Compute every term into ``out`` (this block's slice of the observation vector)."""
        if self.per_frame:
            rows = out.reshape(self.frames, self.row)  # a view: writes land in ``out``
            for t, a, b in self._columns:
                rows[:, a:b] = t.compute(inputs).reshape(self.frames, b - a)
        else:
            for t, a, b in self._columns:
                out[a:b] = t.compute(inputs)

    def segments(self, start: int) -> list[Segment]:
        if self.per_frame:
            return [Segment(self.name, "+".join(t.name for t in self.terms), start, start + self.size)]
        out = []
        for t in self.terms:
            out.append(Segment(self.name, t.name, start, start + t.size))
            start += t.size
        return out


class ObservationBuilder:
    """Assembles a contract's observation vector and keeps its history.

    ``build`` computes the vector for this step without changing any state; ``commit`` then records
    this step's values into the history (so a step that fails after ``build``, e.g. on a bad policy
    output, leaves the history untouched). ``reset`` refills the history with zeros.
    """

    def __init__(self, contract: PolicyContract):
        self.contract = contract
        self._offset_times = np.asarray(contract.future_offsets, dtype=np.float64) * contract.control_dt
        self._terms_blocks: dict[str, _TermsBlock] = {}
        self._order: list[tuple[str, str]] = []  # (kind, block name) in vector order
        self._history_of: dict[str, tuple[str, ...]] = {}
        self._copy_of: dict[str, str] = {}
        for block in contract.observation:
            if block.terms:
                self._terms_blocks[block.name] = _TermsBlock(block, contract)
                self._order.append(("terms", block.name))
            elif block.history_of:
                self._history_of[block.name] = block.history_of
                self._order.append(("history", block.name))
            elif block.copy_of is not None:  # the contract parser admits exactly one of the three
                self._copy_of[block.name] = block.copy_of
                self._order.append(("copy", block.name))
        for name, sources in self._history_of.items():
            for src in sources:
                if src not in self._terms_blocks:
                    raise ValueError(f"history block {name!r} refers to {src!r}, which is not a terms block")
        for name, src in self._copy_of.items():
            if src not in self._terms_blocks:
                raise ValueError(f"copy block {name!r} refers to {src!r}, which is not a terms block")
        self._needs_reference = any(b.per_frame for b in self._terms_blocks.values())

        self.segments: list[Segment] = []
        span: dict[str, tuple[int, int]] = {}  # block name -> (start, stop) in the vector
        start = 0
        for kind, name in self._order:
            size = self._block_size(kind, name)
            if kind == "terms":
                segs = self._terms_blocks[name].segments(start)
            elif kind == "history":
                label = f"history({','.join(self._history_of[name])})"
                segs = [Segment(name, label, start, start + size)]
            else:
                segs = [Segment(name, f"copy({self._copy_of[name]})", start, start + size)]
            self.segments.extend(segs)
            span[name] = (start, start + size)
            start += size
        self.size = start

        # What build() does, resolved once: (block, slice) to compute, (history name, slice) to fill,
        # (destination, source) slices to copy, and per history block the slices of its sources.
        self._compute = [(self._terms_blocks[n], slice(*span[n])) for k, n in self._order if k == "terms"]
        self._fill = [(n, slice(*span[n])) for k, n in self._order if k == "history"]
        self._copies = [(slice(*span[n]), slice(*span[self._copy_of[n]])) for k, n in self._order if k == "copy"]
        self._history_sources = {n: [slice(*span[s]) for s in srcs] for n, srcs in self._history_of.items()}
        self._history: dict[str, np.ndarray] = {  # oldest first, one group after the other
            name: np.zeros(contract.history_length * self._group_size(name)) for name in self._history_of
        }
        self._pending: dict[str, np.ndarray] | None = None
        self.reset()

    def _group_size(self, history_name: str) -> int:
        return sum(self._terms_blocks[s].size for s in self._history_of[history_name])

    def _block_size(self, kind: str, name: str) -> int:
        if kind == "terms":
            return self._terms_blocks[name].size
        if kind == "history":
            return self.contract.history_length * self._group_size(name)
        return self._terms_blocks[self._copy_of[name]].size

    def reset(self) -> None:
        for history in self._history.values():
            history.fill(0.0)
        self._pending = None

    def reference_times(self, now: float) -> np.ndarray:
        """Absolute times of the reference frames the observation looks at."""
        return now + self._offset_times

    def build(self, state: RobotState, window: MotionWindow | None, now: float, last_action: np.ndarray) -> np.ndarray:
        """The observation vector (float64, ``obs_dim`` long) for this step; history not advanced."""
        last_action = np.asarray(last_action, dtype=np.float64)
        if last_action.shape != (self.contract.action_dim,):
            raise ValueError(f"last_action has shape {last_action.shape}, expected ({self.contract.action_dim},)")
        reference = None
        if self._needs_reference:
            if window is None:
                raise ValueError(f"policy {self.contract.name!r} observes the reference motion but no window was given")
            reference = window.sample(self.reference_times(now))
        inputs = ObsInputs(state=state, reference=reference, last_action=last_action)
        obs = np.empty(self.size)
        for block, where in self._compute:
            block.write(inputs, obs[where])
        for name, where in self._fill:
            obs[where] = self._history[name]
        for dest, src in self._copies:
            obs[dest] = obs[src]
        self._pending = {
            name: (obs[srcs[0]].copy() if len(srcs) == 1 else np.concatenate([obs[s] for s in srcs]))
            for name, srcs in self._history_sources.items()
        }
        return obs

    def commit(self) -> None:
        """Record the last built step into the history."""
        if self._pending is None:
            raise RuntimeError("commit() without a build() since the last reset/commit")
        for name, group in self._pending.items():
            history, g = self._history[name], group.size
            if history.size:  # history_length 0: nothing to keep
                history[:-g] = history[g:]  # numpy copies overlapping ranges correctly
                history[-g:] = group
        self._pending = None

    def describe(self, index: int) -> str:
        """Which block/term an observation index belongs to, for error messages."""
        for seg in self.segments:
            if seg.start <= index < seg.stop:
                return f"{seg.block}.{seg.term}[{index - seg.start}]"
        raise IndexError(f"observation index {index} outside 0..{self.size - 1}")


def layout_width(contract: PolicyContract) -> int:
    """The observation width a contract's layout produces (raises ValueError on a bad layout)."""
    return ObservationBuilder(contract).size
