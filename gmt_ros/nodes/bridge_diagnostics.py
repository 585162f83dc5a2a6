"""The bridge's health: what it counts (states, commands, refusals), how its writer keeps time, and
the /diagnostics status made from them once a second, with the link problems an operator meets
first (no rt/lowstate, states refused for their CRC, a slow simulator) named in its message."""
from __future__ import annotations

from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from gmt_ros.adapters import dds

PROFILE_HINT = ("use the unitree_mujoco profile: --params-file config/bridge_unitree_mujoco.yaml after bridge.yaml "
                "(launch: profile:=unitree_mujoco; docs/UNITREE_MUJOCO.md)")
CRC_ZERO_HINT = f"crc 0: Unitree's Python simulator (unitree_mujoco) does not set it; {PROFILE_HINT}"


def crc_refusal_text(bad: int, zero: int, interface: str, domain: int) -> str:
    """Why no robot state was accepted although states arrive."""
    if zero == bad:
        return (f"{bad} rt/lowstate received on interface {interface!r} domain {domain}, all with CRC 0 (none "
                f"accepted): Unitree's Python simulator does not set it; {PROFILE_HINT}")
    return (f"{bad} rt/lowstate received on interface {interface!r} domain {domain}, all with a wrong CRC "
            f"({zero} with CRC 0): another robot or a publisher with a different message layout?")


@dataclass
class WriterTiming:
    """Per diagnostics period: how late ticks started and how long their work took (s)."""

    ticks: int = 0
    work_sum: float = 0.0
    work_max: float = 0.0
    late_max: float = 0.0


@dataclass
class BridgeCounters:
    lowstate: int = 0
    bad_crc: int = 0
    crc_zero: int = 0  # of bad_crc: crc field 0 (Unitree's Python simulator never sets it)
    state_errors: int = 0
    lowcmd: int = 0
    write_failures: int = 0
    rejected_targets: int = 0
    targets: int = 0
    overruns: int = 0


class BridgeDiagnostics:
    """Rates over each period, the link's state, and ``publish_every``: /joint_states carries every
    n-th rt/lowstate, n from the measured lowstate rate (every state until it is measured)."""

    @staticmethod
    def fall_state_text(state) -> str:
        """The fall check's inputs in the state a fall fault latched on, for the log: whoever reads
        it can recompute tilt and height estimate (gmt_ros.core.fall_check) and match it by tick."""
        legs = " ".join(f"{q:+.3f}" for q in state.joint_pos[:12])
        quat = " ".join(f"{q:+.4f}" for q in state.imu_quat)
        return f"fall check inputs: lowstate tick {state.tick}, IMU quaternion (w x y z) {quat}, leg joints {legs} rad"

    def __init__(self, node_name: str, params: dict, start: float, logger):
        self._name = node_name
        self._p = params
        self._start = start
        self._logger = logger
        self._last = (start, 0, 0)  # time, lowstate count, lowcmd count
        self._link_warned = False
        self._slow_warned = False
        self.publish_every = 1

    def status(self, now: float, c: BridgeCounters, timing: WriterTiming, mode: str, fault: str | None,
               mode_machine, contract: str) -> DiagnosticStatus:
        t0, states0, cmds0 = self._last
        dt = max(now - t0, 1e-6)
        state_rate, cmd_rate = (c.lowstate - states0) / dt, (c.lowcmd - cmds0) / dt
        self._last = (now, c.lowstate, c.lowcmd)
        p = self._p
        message = f"supervisor {mode}" + (f", fault: {fault}" if fault else "")
        level = DiagnosticStatus.ERROR if fault else DiagnosticStatus.OK
        if state_rate > 0:  # /joint_states at state_publish_rate_hz, never below every state under it
            self.publish_every = max(1, int(state_rate // p["state_publish_rate_hz"]))
        if c.lowstate == 0 and c.bad_crc > 0:
            link = crc_refusal_text(c.bad_crc, c.crc_zero, p["network_interface"], p["dds_domain"])
            message, level = link, DiagnosticStatus.ERROR
            if not self._link_warned and now - self._start > p["link_timeout_s"]:
                self._link_warned = True
                self._logger.error(link)
        elif c.lowstate == 0 and now - self._start > p["link_timeout_s"]:
            link = dds.no_message_text(dds.LOWSTATE_TOPIC, now - self._start, p["dds_domain"], p["network_interface"])
            message, level = link, DiagnosticStatus.ERROR
            if not self._link_warned:
                self._link_warned = True
                self._logger.warning(link)
        elif 0 < state_rate < p["min_lowstate_rate_hz"] and now - self._start > 3.0:
            slow = (f"rt/lowstate arrives at {state_rate:.0f} Hz (a G1 publishes 500 Hz): /joint_states at "
                    f"{state_rate / self.publish_every:.0f} Hz; Unitree's Python simulator publishes once per "
                    f"SIMULATE_DT and holds each command for a whole step (docs/UNITREE_MUJOCO.md)")
            if level == DiagnosticStatus.OK:
                message, level = slow, DiagnosticStatus.WARN
            if not self._slow_warned:
                self._slow_warned = True
                self._logger.warning(slow)
        values = {
            "mode": mode,
            "fault": fault or "",
            "dry_run": p["dry_run"],
            "lowstate_rate_hz": f"{state_rate:.1f}",
            "lowcmd_rate_hz": f"{cmd_rate:.1f}",
            "lowstate_count": c.lowstate,
            "lowcmd_count": c.lowcmd,
            "bad_crc_count": c.bad_crc,
            "crc_zero_count": c.crc_zero,
            "joint_states_rate_hz": f"{state_rate / self.publish_every:.1f}",
            "state_errors": c.state_errors,
            "write_failures": c.write_failures,
            "targets": c.targets,
            "rejected_targets": c.rejected_targets,
            "writer_overruns": c.overruns,
            "writer_work_mean_ms": f"{1e3 * timing.work_sum / max(timing.ticks, 1):.3f}",
            "writer_work_max_ms": f"{1e3 * timing.work_max:.3f}",
            "writer_late_max_ms": f"{1e3 * timing.late_max:.3f}",
            "mode_machine": mode_machine,
            "contract": contract,
            "network_interface": p["network_interface"],
            "dds_domain": p["dds_domain"],
        }
        return DiagnosticStatus(
            level=level, name=f"{self._name}: lowlevel bridge", message=message,
            hardware_id=f"unitree_g1@{p['network_interface']}/domain{p['dds_domain']}",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
