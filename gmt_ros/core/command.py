"""The one motor command type: per-slot PD targets for the 29 body motors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gmt_ros.core import g1

_FIELDS = ("q", "dq", "kp", "kd", "tau")


@dataclass
class JointCommand:
    """PD command for the 29 body motor slots, applied by the motor drivers as
    ``tau_motor = kp * (q - q_meas) + kd * (dq - dq_meas) + tau``. ``enabled`` False slots are
    sent with mode 0 (motor off)."""

    q: np.ndarray
    dq: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    tau: np.ndarray
    enabled: np.ndarray

    @classmethod
    def damping(cls, kd: float = g1.DAMPING_KD) -> JointCommand:
        """The terminal safe command: no position stiffness, viscous damping on every motor."""
        n = g1.NUM_BODY_JOINTS
        z = np.zeros(n)
        return cls(q=z.copy(), dq=z.copy(), kp=z.copy(), kd=np.full(n, kd), tau=z.copy(), enabled=np.ones(n, bool))

    @classmethod
    def zero_torque(cls) -> JointCommand:
        n = g1.NUM_BODY_JOINTS
        z = np.zeros(n)
        return cls(q=z.copy(), dq=z.copy(), kp=z.copy(), kd=z.copy(), tau=z.copy(), enabled=np.ones(n, bool))

    def validate(self) -> None:
        """Raise ValueError naming the field and slot of a wrong shape, NaN/inf, or negative gain."""
        if self._looks_valid():
            return
        for name in _FIELDS + ("enabled",):
            value = np.asarray(getattr(self, name))
            if value.shape != (g1.NUM_BODY_JOINTS,):
                raise ValueError(f"JointCommand.{name} has shape {value.shape}, expected ({g1.NUM_BODY_JOINTS},)")
        for name in _FIELDS:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(value))
            if bad.size:
                raise ValueError(f"JointCommand.{name} is not finite at {g1.JOINT_NAMES[bad[0]]} (slot {bad[0]})")
        for name in ("kp", "kd"):
            bad = np.flatnonzero(np.asarray(getattr(self, name)) < 0)
            if bad.size:
                raise ValueError(f"JointCommand.{name} is negative at {g1.JOINT_NAMES[bad[0]]} (slot {bad[0]})")

    def _looks_valid(self) -> bool:
        """The common case in a few vectorised operations (the bridge validates 500 commands a
        second); False sends ``validate`` down the slow path that names the problem."""
        n = g1.NUM_BODY_JOINTS
        fields = (self.q, self.dq, self.kp, self.kd, self.tau)
        if not all(isinstance(f, np.ndarray) and f.shape == (n,) for f in fields) or np.shape(self.enabled) != (n,):
            return False
        values = np.concatenate(fields)
        if values.dtype.kind not in "fiu":
            return False
        gains = values[2 * n:4 * n]
        return bool(np.isfinite(values).all() and (gains >= 0).all())

    def copy(self) -> JointCommand:
        return JointCommand(**{k: np.array(getattr(self, k), copy=True) for k in _FIELDS + ("enabled",)})
