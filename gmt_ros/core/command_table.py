"""A policy's motor command table: the contract's 29-slot pose and gains, derived once.

Every command the stack sends under a policy is built from one ``CommandTable``
(``PolicyContract.command_table``): the policy maps actions onto it (``TrackingPolicy``), the bridge
maps the policy's named PD targets onto it (``TargetMapper``), and the supervisor ramps to and holds
its default pose with its gains. Policy joints get the contract's default pose and kp/kd; joints
the policy does not drive (``held_joints``, e.g. the wrists of a 23-joint policy) their hold
target and gains. The table also carries the contract's identity (name and content hash), which
travels with each PD target so the bridge can refuse targets made under another contract.

The mapper checks structure only (joint names, lengths): a target with NaN/inf values is mapped as
it is, so that the safety supervisor, which owns every command sent, sees it and faults
(``CommandLimits.check``) instead of the target silently going missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.command import JointCommand

if TYPE_CHECKING:
    from gmt_ros.core.contract import ContractId, PolicyContract


def _frozen(values) -> np.ndarray:
    a = np.array(values, dtype=np.float64)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class CommandTable:
    identity: ContractId
    policy_names: tuple[str, ...]  # the joints the policy drives, in policy (action) order
    policy_slots: np.ndarray       # their motor slots
    held_slots: np.ndarray         # slots held at a fixed target (not driven by the policy)
    default_pose: np.ndarray       # (29,) policy joints' default pose, held joints' targets
    kp: np.ndarray                 # (29,)
    kd: np.ndarray                 # (29,)

    @classmethod
    def from_contract(cls, contract: PolicyContract) -> CommandTable:
        """The table of a (validated) contract; every body joint must be driven or held."""
        held = tuple(contract.held_joints)
        names = tuple(contract.joint_names) + tuple(h.name for h in held)
        missing = [n for n in g1.JOINT_NAMES if n not in names]
        if missing:
            raise ValueError(f"contract {contract.name}: body joint(s) neither driven by the policy nor held: {missing}")
        slots = g1.slots_of(names)
        pose, kp, kd = (np.zeros(g1.NUM_BODY_JOINTS) for _ in range(3))
        pose[slots] = np.concatenate([contract.default_pose, [h.target for h in held]])
        kp[slots] = np.concatenate([contract.kp, [h.kp for h in held]])
        kd[slots] = np.concatenate([contract.kd, [h.kd for h in held]])
        return cls(identity=contract.identity, policy_names=tuple(contract.joint_names),
                   policy_slots=g1.slots_of(contract.joint_names), held_slots=g1.slots_of([h.name for h in held]),
                   default_pose=_frozen(pose), kp=_frozen(kp), kd=_frozen(kd))

    @property
    def required_slots(self) -> tuple[int, ...]:
        """Slots that must report a live motor: every body joint is driven or held."""
        return tuple(sorted(int(s) for s in np.concatenate([self.policy_slots, self.held_slots])))

    @property
    def needs_29dof(self) -> bool:
        """The policy drives waist roll/pitch or a wrist (not present on a 23-DoF G1)."""
        return bool(set(self.policy_slots.tolist()) & ({13, 14} | set(g1.WRIST_SLOTS)))

    def command(self, q: np.ndarray) -> JointCommand:
        """A PD command to the 29 positions ``q`` with the table's gains (zero dq and tau)."""
        n = g1.NUM_BODY_JOINTS
        return JointCommand(q=np.array(q, dtype=np.float64), dq=np.zeros(n), kp=self.kp.copy(), kd=self.kd.copy(),
                            tau=np.zeros(n), enabled=np.ones(n, dtype=bool))


class TargetMapper:
    """Named joint targets (the policy's joints, any order) → 29-slot JointCommand of a table."""

    def __init__(self, table: CommandTable):
        self.table = table
        self._policy_names = frozenset(table.policy_names)
        self._order_cache: dict[tuple[str, ...], np.ndarray] = {}

    def _slots(self, names: tuple[str, ...]) -> np.ndarray:
        slots = self._order_cache.get(names)
        if slots is None:
            if len(set(names)) != len(names):
                raise ValueError(f"target names repeat a joint: {sorted({n for n in names if names.count(n) > 1})}")
            unknown = [n for n in names if n not in self._policy_names]
            missing = sorted(self._policy_names.difference(names))
            if unknown or missing:
                raise ValueError(
                    f"target joints do not match the policy's: not policy joints {unknown}, missing {missing}"
                )
            slots = g1.slots_of(names)
            if len(self._order_cache) < 8:  # publishers use one order; a few are plenty
                self._order_cache[names] = slots
        return slots

    def command(self, names, q, dq=None, tau=None) -> JointCommand:
        """The full command for a target; ``dq``/``tau`` are optional (None or empty means zero).
        Raises ValueError naming the problem (joint set, lengths); NaN/inf pass through (see above)."""
        names = tuple(names)
        slots = self._slots(names)
        cmd = self.table.command(self.table.default_pose)
        cmd.q[slots] = _per_name("position", q, len(names))
        if dq is not None and len(dq):
            cmd.dq[slots] = _per_name("velocity", dq, len(names))
        if tau is not None and len(tau):
            cmd.tau[slots] = _per_name("effort", tau, len(names))
        return cmd


def _per_name(label: str, values, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"target {label} has {arr.size} values for {n} joint names")
    return arr
