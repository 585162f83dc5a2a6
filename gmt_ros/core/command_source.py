"""Policy targets by joint name -> full 29-slot motor commands (no ROS).

- ``PolicyGains``: a policy's per-joint kp/kd and the joints it does not drive, held at fixed
  targets; ``gains_from_contract`` is the one place that reads them from a contract.
- ``TargetMapper`` turns a named joint target (the policy's joints, any order) into a JointCommand:
  policy joints get the contract's kp/kd, held joints their hold target and gains.

The mapper checks structure only (joint names, lengths): a target with NaN/inf values is mapped
as it is, so that the safety supervisor, which owns every command sent, sees it and faults
(``CommandLimits.check``) instead of the target silently going missing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.command import JointCommand


@dataclass(frozen=True)
class PolicyGains:
    """Per-joint PD gains of a policy, and the joints it does not drive, held at fixed targets."""

    joint_names: tuple[str, ...]
    kp: np.ndarray
    kd: np.ndarray
    held_names: tuple[str, ...] = ()
    held_q: np.ndarray = field(default_factory=lambda: np.zeros(0))
    held_kp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    held_kd: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "held_names", tuple(self.held_names))
        for name in ("kp", "kd", "held_q", "held_kp", "held_kd"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        per_joint = {
            "kp": self.joint_names, "kd": self.joint_names,
            "held_q": self.held_names, "held_kp": self.held_names, "held_kd": self.held_names,
        }
        g1.slots_of(self.joint_names + self.held_names)  # unknown names are an error naming them
        for arr, names in per_joint.items():
            value = getattr(self, arr)
            if value.shape != (len(names),):
                raise ValueError(f"policy gains: {arr} has shape {value.shape}, expected ({len(names)},), one per joint")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"policy gains: {arr} contains NaN or inf")
            bad = np.flatnonzero(value < 0) if arr != "held_q" else ()
            if len(bad):
                raise ValueError(f"policy gains: {arr} is negative for {names[bad[0]]}")
        every = list(self.joint_names) + list(self.held_names)
        repeated = sorted({n for n in every if every.count(n) > 1})
        if repeated:
            raise ValueError(f"policy gains: joint(s) listed twice (policy and/or held): {repeated}")
        missing = [n for n in g1.JOINT_NAMES if n not in every]
        if missing:
            raise ValueError(f"policy gains: body joint(s) neither driven by the policy nor held: {missing}")


class TargetMapper:
    """Named joint targets → 29-slot JointCommand with the policy's gains."""

    def __init__(self, gains: PolicyGains):
        self.gains = gains
        self._policy_names = frozenset(gains.joint_names)
        self._gain_of = {n: (kp, kd) for n, kp, kd in zip(gains.joint_names, gains.kp.tolist(), gains.kd.tolist())}
        n = g1.NUM_BODY_JOINTS
        base = JointCommand(q=np.zeros(n), dq=np.zeros(n), kp=np.zeros(n), kd=np.zeros(n), tau=np.zeros(n), enabled=np.ones(n, bool))
        held = g1.slots_of(gains.held_names)
        base.q[held], base.kp[held], base.kd[held] = gains.held_q, gains.held_kp, gains.held_kd
        self._base = base
        self._order_cache: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _order(self, names: tuple[str, ...]):
        cached = self._order_cache.get(names)
        if cached is None:
            if len(set(names)) != len(names):
                raise ValueError(f"target names repeat a joint: {sorted({n for n in names if names.count(n) > 1})}")
            unknown = [n for n in names if n not in self._policy_names]
            missing = sorted(self._policy_names.difference(names))
            if unknown or missing:
                raise ValueError(
                    f"target joints do not match the policy's: not policy joints {unknown}, missing {missing}"
                )
            slots = g1.slots_of(names)
            kp = np.array([self._gain_of[n][0] for n in names])
            kd = np.array([self._gain_of[n][1] for n in names])
            cached = (slots, kp, kd)
            if len(self._order_cache) < 8:  # publishers use one order; a few are plenty
                self._order_cache[names] = cached
        return cached

    def command(self, names, q, dq=None, tau=None) -> JointCommand:
        """The full command for a target; ``dq``/``tau`` are optional (None or empty means zero).
        Raises ValueError naming the problem (joint set, lengths); NaN/inf pass through (see above)."""
        names = tuple(names)
        slots, kp, kd = self._order(names)
        cmd = self._base.copy()
        cmd.q[slots] = _per_name("position", q, len(names))
        if dq is not None and len(dq):
            cmd.dq[slots] = _per_name("velocity", dq, len(names))
        if tau is not None and len(tau):
            cmd.tau[slots] = _per_name("effort", tau, len(names))
        cmd.kp[slots] = kp
        cmd.kd[slots] = kd
        return cmd


def _per_name(label: str, values, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"target {label} has {arr.size} values for {n} joint names")
    return arr


def gains_from_contract(contract) -> PolicyGains:
    """The one place that takes gains from a policy contract (``gmt_ros.core.contract``:
    ``joint_names``, ``kp``, ``kd`` in policy order; ``held_joints`` with ``name, target, kp, kd``)."""
    held = tuple(contract.held_joints)
    return PolicyGains(
        joint_names=tuple(contract.joint_names),
        kp=np.asarray(contract.kp, dtype=np.float64),
        kd=np.asarray(contract.kd, dtype=np.float64),
        held_names=tuple(h.name for h in held),
        held_q=np.array([h.target for h in held], dtype=np.float64),
        held_kp=np.array([h.kp for h in held], dtype=np.float64),
        held_kd=np.array([h.kd for h in held], dtype=np.float64),
    )
