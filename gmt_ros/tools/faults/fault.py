"""What every fault of the suite is (``Fault``): class attributes describe it; ``sim_settings`` (faults
the simulated robot plays) or ``inject`` (those the suite causes), ``reference`` (when detection
became possible) and ``verdict`` (what counts as handled) are its hooks; ``bound_s`` the time it
allows from the reference to the reaction."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from gmt_ros.tools.faults.model import DETECTION_S, Injection, Verdict

if TYPE_CHECKING:
    from gmt_ros.tools.faults.run import FaultRun


class Fault:
    """One fault of the suite. Class attributes describe it; subclasses override the hooks."""

    number: ClassVar[int]
    name: ClassVar[str]
    title: ClassVar[str]
    group: ClassVar[str]      # fault class, for --short
    expected: ClassVar[str]   # "damping" | "refusal" | "safe pose"
    cause: ClassVar[str]      # regular expression the supervisor's fault (or refusal log) must match
    bound: ClassVar[str] = ""  # "state_timeout", "target_timeout", "detection", "window_timeout", "" (none)
    startup: ClassVar[bool] = False  # only the bridge and the sim run; the robot is checked at start
    # The simulated robot plays it at a fixed sim time: its --fault spec, "{t}" standing for that time.
    spec: ClassVar[str] = ""

    @property
    def sim_side(self) -> bool:
        return bool(self.spec)

    def sim_settings(self, fault_sim_time: float) -> dict[str, str]:
        """Settings for the sim node that make it play this fault (none for suite-side faults)."""
        return {"fault": self.spec.format(t=f"{fault_sim_time:.3f}")} if self.spec else {}

    def inject(self, run: FaultRun, inj: Injection) -> None:
        """Cause the fault during tracking (the sim plays sim-side faults by itself) and wait for
        the supervisor's reaction."""
        if not self.sim_side:
            raise NotImplementedError(f"{self.name} says neither how the suite injects it nor a sim spec")
        run.await_sim_fault(inj)

    def reference(self, v: Verdict) -> tuple[float | None, str]:
        """When detection became possible (wall time) and what that moment is."""
        return None, ""

    def verdict(self, v: Verdict) -> None:
        raise NotImplementedError

    def bound_s(self, settings: dict) -> float | None:
        """The time allowed from the reference to the first damping command at the robot (for the
        frozen player: to the policy's switch to the standing pose)."""
        return {
            "state_timeout": settings["state_timeout_s"] + DETECTION_S,
            "target_timeout": settings["target_timeout_s"] + DETECTION_S,
            "window_timeout": settings["window_timeout_s"] + DETECTION_S,
            "detection": DETECTION_S,
        }.get(self.bound)
