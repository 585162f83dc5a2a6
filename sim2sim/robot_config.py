"""How the simulated robot runs (``sim2sim.sdk_robot.SimRobotServer``): DDS, physics and state rates,
the gantry, the remote script, command timeouts, pacing, the domain-randomization draw."""
from __future__ import annotations

import math
from dataclasses import dataclass

from sim2sim.g1_model import DEFAULT_TIMESTEP
from sim2sim.remote_script import parse_remote_script

DEFAULT_MODE_MACHINE = 5  # what Unitree's simulator reports for a 29-DoF G1


@dataclass
class SimRobotConfig:
    """How the simulated robot runs (``validate()`` names a bad field; it also parses
    ``remote_script`` from text or a list into ``RemotePress`` tuples)."""

    domain: int = 1
    interface: str = "lo"
    mode_machine: int = DEFAULT_MODE_MACHINE
    physics_dt: float = DEFAULT_TIMESTEP
    state_every_steps: int = 2  # lowstate at 1 / (2 * 1 ms) = 500 Hz
    hold_start_s: float = 0.0
    hold_until_release: bool = False  # hold until a release request (sim2sim.gantry_link), not a clock
    remote_script: tuple = ()
    command_timeout_s: float = 0.5
    max_catchup_s: float = 0.25
    latency_buffer: int = 20000
    log_first_bad: int = 5
    seed: int = 0
    dr: str = "none"  # domain-randomization preset (config/randomization.yaml) or a preset file; drawn with seed

    def validate(self) -> None:
        def positive(name):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")

        for name in ("physics_dt", "command_timeout_s", "max_catchup_s"):
            positive(name)
        if not (math.isfinite(self.hold_start_s) and self.hold_start_s >= 0):
            raise ValueError(f"hold_start_s must be >= 0, got {self.hold_start_s!r}")
        for name in ("state_every_steps", "latency_buffer"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.mode_machine, bool) or not isinstance(self.mode_machine, int) or not 0 <= self.mode_machine <= 255:
            raise ValueError(f"mode_machine must be an integer in 0..255 (uint8), got {self.mode_machine!r}")
        self.remote_script = parse_remote_script(self.remote_script)
