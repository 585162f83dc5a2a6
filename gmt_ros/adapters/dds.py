"""The Unitree SDK's DDS participant: one per process, on a named interface and domain.

The SDK's ``ChannelFactoryInitialize`` silently keeps the first settings when called again, and a
wrong interface name makes everything do nothing. Here a second call with other settings is an
error, an interface that does not exist is an error naming the ones that do, and "nothing
arrives" is reported with the interface and domain that were tried.

The robot uses domain 0 on its wired interface; simulators and tests use a non-zero domain on
"lo" (tests must never use another interface).
"""
from __future__ import annotations

import socket
import threading

from unitree_sdk2py.core.channel import ChannelFactoryInitialize, ChannelSubscriber

from gmt_ros.adapters.lowlevel import FastLowState_

LOWSTATE_TOPIC = "rt/lowstate"
LOWCMD_TOPIC = "rt/lowcmd"
MAX_DOMAIN_ID = 232  # DDS port mapping limit (7400 + 250 * domain must fit in 16 bits)

_lock = threading.Lock()
_settings: tuple[int, str] | None = None


class LinkTimeoutError(RuntimeError):
    """Nothing arrived on a topic within the allowed time."""


def network_interfaces() -> list[str]:
    return sorted(name for _index, name in socket.if_nameindex())


def check_interface(interface: str) -> None:
    """Raise ValueError when ``interface`` is not a network interface of this machine."""
    available = network_interfaces()
    if interface not in available:
        raise ValueError(
            f"network interface {interface!r} does not exist on this machine; available: {', '.join(available)}"
        )


def init_channel_factory(domain: int, interface: str) -> None:
    """Create the process's SDK DDS participant on ``interface`` in ``domain`` (once per process).

    Calling again with the same settings does nothing; with other settings it raises
    RuntimeError, because the SDK would silently keep the first ones.
    """
    global _settings
    if isinstance(domain, bool) or not isinstance(domain, int) or not 0 <= domain <= MAX_DOMAIN_ID:
        raise ValueError(f"DDS domain must be an integer in 0..{MAX_DOMAIN_ID}, got {domain!r}")
    if not isinstance(interface, str) or not interface:
        raise ValueError(f"network interface must be a non-empty name such as 'eth0' or 'lo', got {interface!r}")
    with _lock:
        if _settings is not None:
            if _settings != (domain, interface):
                raise RuntimeError(
                    f"the Unitree SDK channel factory is already initialised on interface {_settings[1]!r} "
                    f"domain {_settings[0]} in this process; cannot switch to interface {interface!r} "
                    f"domain {domain} (one DDS participant per process)"
                )
            return
        check_interface(interface)
        try:
            ChannelFactoryInitialize(domain, interface)
        except Exception as exc:  # the SDK raises a bare Exception and prints the DDS error
            raise RuntimeError(
                f"could not create the DDS participant on interface {interface!r} domain {domain}: {exc}"
            ) from exc
        _settings = (domain, interface)


def channel_factory_settings() -> tuple[int, str] | None:
    """(domain, interface) the process's participant was created with, or None."""
    return _settings


def no_message_text(topic: str, timeout_s: float, domain: int | None = None, interface: str | None = None) -> str:
    """The one explanation for "nothing arrived", naming what was tried."""
    if domain is None or interface is None:
        domain, interface = _settings if _settings is not None else ("?", "?")
    return (
        f"no {topic} within {timeout_s:.1f} s on interface {interface!r} domain {domain}: check that the robot "
        f"(or simulator) is running and reachable on that interface, and the network_interface/dds_domain "
        f"settings (robot: its wired interface, domain 0; simulator: usually 'lo', domain 1)"
    )


def wait_for_lowstate(timeout_s: float, topic: str = LOWSTATE_TOPIC):
    """Block until one LowState_ arrives and return it; raise LinkTimeoutError naming the
    interface and domain when none arrives within ``timeout_s``. Needs init_channel_factory."""
    if _settings is None:
        raise RuntimeError("init_channel_factory(domain, interface) must be called before wait_for_lowstate")
    received = []
    arrived = threading.Event()

    def on_sample(msg) -> None:
        if not arrived.is_set():
            received.append(msg)
            arrived.set()

    subscriber = ChannelSubscriber(topic, FastLowState_)
    subscriber.Init(on_sample, 0)
    try:
        if not arrived.wait(timeout_s):
            raise LinkTimeoutError(no_message_text(topic, timeout_s))
        return received[0]
    finally:
        subscriber.Close()


ONE_CYCLONEDDS_HINT = (
    "Use the RMW gmt_ros is tested with (RMW_IMPLEMENTATION=rmw_fastrtps_cpp: Fast DDS for ROS, the SDK's CycloneDDS "
    "for the robot), or build the SDK's cyclonedds Python binding against the same CycloneDDS as the RMW "
    "(CYCLONEDDS_HOME=<its prefix> pip install cyclonedds==<that version>) so one library serves both; README, "
    "\"On a ROS 2 host\"")


def check_rmw_compatible(rmw_identifier: str) -> None:
    """Refuse rmw_cyclonedds in a process that also loads the SDK's CycloneDDS 0.10.2: two CycloneDDS
    builds in one process crash or fail silently (unitree_mujoco #60, TWIST2 #12)."""
    if "cyclonedds" in rmw_identifier:
        raise RuntimeError(
            f"this process uses the Unitree SDK's CycloneDDS and ROS 2 middleware {rmw_identifier!r}, which loads "
            f"its own CycloneDDS build: two CycloneDDS libraries in one process crash or fail silently. "
            + ONE_CYCLONEDDS_HINT)


def check_rmw_environment(environ=None) -> None:
    """Before rclpy.init: RMW_IMPLEMENTATION asking for CycloneDDS (as unitree_ros2's set-up does)."""
    import os

    value = (os.environ if environ is None else environ).get("RMW_IMPLEMENTATION", "")
    if "cyclonedds" in value:
        check_rmw_compatible(value)


def exit_if_cyclonedds_rmw(node_name: str) -> None:
    """check_rmw_environment for a node's module, before it imports rclpy: one line, exit 1."""
    import os
    import sys

    try:
        check_rmw_environment()
    except RuntimeError as exc:
        print(f"[FATAL] [{node_name}]: cannot start: {exc}", file=sys.stderr, flush=True)
        os._exit(1)


def loaded_cyclonedds_libraries(maps_text: str | None = None) -> list[str]:
    """The distinct CycloneDDS C libraries (libddsc) mapped into this process (/proc/self/maps)."""
    import os

    if maps_text is None:
        try:
            with open("/proc/self/maps") as f:
                maps_text = f.read()
        except OSError:  # not Linux: nothing to tell
            return []
    paths = set()
    for line in maps_text.splitlines():
        path = line.split(None, 5)[5].strip() if len(line.split(None, 5)) == 6 else ""
        if os.path.basename(path).startswith("libddsc.so"):
            paths.add(os.path.realpath(path) if os.path.exists(path) else path)
    return sorted(paths)


def check_single_cyclonedds(maps_text: str | None = None) -> None:
    """Refuse to go on with two CycloneDDS libraries mapped in this process (e.g. the RMW's 0.10.5 from
    /opt/ros beside the SDK's 0.10.2), naming both."""
    libs = loaded_cyclonedds_libraries(maps_text)
    if len(libs) > 1:
        raise RuntimeError(f"{len(libs)} CycloneDDS libraries are loaded in this process ({', '.join(libs)}): they "
                           f"crash or fail silently together. " + ONE_CYCLONEDDS_HINT)
