"""The simulator's gantry (or elastic band) on the robot's DDS: released on request, never by a clock.

A simulated robot that hangs until a timer runs out races the operator: release it in the middle
of the bridge's ramp and it falls before the policy takes over. A simulator started with
``hold_until_release`` keeps the robot up until someone who knows the supervisor reached
``policy`` (``gmt-ros operate engage --release-gantry``, the launch files' operator) asks:

    rt/gmt/sim/gantry          unitree std_msgs String_ "release"    operator -> simulator
    rt/gmt/sim/gantry_state    unitree std_msgs String_ "held" | "released"
                                                                      simulator -> operator, 2 Hz
                                                                      and on every change

Both topics live beside rt/lowstate (same DDS domain and interface); a real robot has neither, and
``release_gantry`` then says so. Used by ``sim2sim.sdk_robot`` and by the headless runner of
Unitree's own simulator (``sim2sim.unitree_mujoco_headless``), whose elastic band it releases.
"""
from __future__ import annotations

import threading
import time

COMMAND_TOPIC = "rt/gmt/sim/gantry"
STATE_TOPIC = "rt/gmt/sim/gantry_state"
RELEASE = "release"
HELD, RELEASED = "held", "released"
STATE_PERIOD_S = 0.5


class GantryTimeoutError(RuntimeError):
    """No simulator confirmed the release."""


class GantryServer:
    """Simulator side: ``requested`` turns true on a release request; ``publish(state)`` reports.
    Needs the process's SDK channel factory (``gmt_ros.adapters.dds.init_channel_factory``)."""

    def __init__(self, on_release=None):
        from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber
        from unitree_sdk2py.idl.std_msgs.msg.dds_ import String_

        self._String = String_
        self.requested = threading.Event()
        self._on_release = on_release
        self._last_state: str | None = None
        self._last_publish = 0.0
        self._pub = ChannelPublisher(STATE_TOPIC, String_)
        self._pub.Init()
        self._sub = ChannelSubscriber(COMMAND_TOPIC, String_)
        self._sub.Init(self._on_command, 1)

    def _on_command(self, msg) -> None:
        if str(msg.data).strip().lower() == RELEASE and not self.requested.is_set():
            self.requested.set()
            if self._on_release is not None:
                self._on_release()

    def publish(self, state: str, now: float | None = None) -> None:
        """Report ``state`` when it changed or every STATE_PERIOD_S (cheap to call every step)."""
        now = time.monotonic() if now is None else now
        if state != self._last_state or now - self._last_publish >= STATE_PERIOD_S:
            self._last_state, self._last_publish = state, now
            self._pub.Write(self._String(data=state))

    def close(self) -> None:
        self._sub.Close()
        self._pub.Close()


def release_gantry(timeout_s: float = 10.0, retry_s: float = 0.2) -> float:
    """Operator side: ask the simulator on this process's SDK domain to release its gantry and wait
    for it to say so. Returns the seconds it took; GantryTimeoutError when no simulator confirms
    (none listening: a real robot, a simulator without ``hold_until_release``, another domain)."""
    from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber
    from unitree_sdk2py.idl.std_msgs.msg.dds_ import String_

    from gmt_ros.adapters import dds

    released = threading.Event()
    seen: list[str] = []

    def on_state(msg) -> None:
        seen.append(str(msg.data))
        if str(msg.data) == RELEASED:
            released.set()

    sub = ChannelSubscriber(STATE_TOPIC, String_)
    sub.Init(on_state, 4)
    pub = ChannelPublisher(COMMAND_TOPIC, String_)
    pub.Init()
    t0 = time.monotonic()
    try:
        while not released.is_set():
            if time.monotonic() - t0 > timeout_s:
                where = dds.channel_factory_settings()
                heard = f"the simulator reported {seen[-1]!r}" if seen else f"nothing on {STATE_TOPIC}"
                raise GantryTimeoutError(
                    f"no simulator released its gantry within {timeout_s:.0f} s ({heard}) on interface "
                    f"{where[1] if where else '?'!r} domain {where[0] if where else '?'}: is the simulator "
                    f"started with hold_until_release (gmt-ros-sim --hold-until-release)?")
            pub.Write(String_(data=RELEASE))
            released.wait(retry_s)
        return time.monotonic() - t0
    finally:
        pub.Close()
        sub.Close()
