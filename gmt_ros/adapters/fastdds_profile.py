"""Fast DDS (the ROS 2 middleware here) without shared memory, for every gmt_ros process.

Measured on the node graph (docs/SAFETY.md, "New participants"; ``scripts/discovery_stall.sh``):
with Fast DDS's shared-memory transport, each process joining the ROS graph (``gmt-ros operate``,
``ros2 topic echo``, rviz) could hold deliveries between the running nodes for up to a third of a
second: a port listener of the policy sat in its 333 ms timed wait (Fast DDS's
``port_wait_timeout_ms``, ``healthy_check_timeout_ms / 3``) while the bridge published every
20 ms, and the bridge damped on a stale PD target. The stall came back as long as the joining
process had shared memory, even with the nodes receiving over UDP; so every participant of ours
runs with the UDP transport only.

rmw_fastrtps adds its own shared-memory transport under ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``
(``FASTDDS_BUILTIN_TRANSPORTS`` is overridden there), so for that range the process's range becomes
SYSTEM_DEFAULT and ``config/fastdds_udp_localhost.xml`` does what LOCALHOST did (unicast discovery
on 127.0.0.1, no multicast) without shared memory. Other ranges keep Fast DDS's
discovery with ``config/fastdds_udp.xml``. A profile of the user's own
(``FASTDDS_DEFAULT_PROFILES_FILE``), static peers under LOCALHOST, discovery OFF, another RMW or
``GMT_ROS_FASTDDS_SHM=1`` leave the middleware as it is configured.

``apply()`` must run before the process's first ``rclpy.init`` (Fast DDS reads the profile file
once per process); the children of the process inherit the result.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from gmt_ros.core.paths import config_dir

PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
RANGE_ENV = "ROS_AUTOMATIC_DISCOVERY_RANGE"
OPT_OUT_ENV = "GMT_ROS_FASTDDS_SHM"
LOCALHOST_PROFILE = "fastdds_udp_localhost.xml"
OTHER_RANGES_PROFILE = "fastdds_udp.xml"


@dataclass(frozen=True)
class MiddlewarePlan:
    """What ``apply`` sets: the profile file and the discovery range (None: left as it is), and
    one line saying what is in force and why."""

    profile: Path | None
    discovery_range: str | None
    text: str


def discovery_range(environ: MutableMapping[str, str]) -> str:
    """The ROS discovery range the environment asks for (rcl's rules: the range variable, else
    the deprecated ``ROS_LOCALHOST_ONLY=1``, else SUBNET)."""
    value = environ.get(RANGE_ENV, "").strip().upper()
    if value:
        return value
    return "LOCALHOST" if environ.get("ROS_LOCALHOST_ONLY", "").strip() == "1" else "SUBNET"


def plan(environ: MutableMapping[str, str], profiles: Path | None = None) -> MiddlewarePlan:
    """Decide without changing anything; ``profiles``: the folder of the XML files (config/)."""
    folder = config_dir() if profiles is None else profiles
    localhost, other = folder / LOCALHOST_PROFILE, folder / OTHER_RANGES_PROFILE
    leave = "Fast DDS as configured ({}): shared memory may be on, and a process joining the graph can then stall " \
            "it (docs/SAFETY.md, \"New participants\")"
    rmw = environ.get("RMW_IMPLEMENTATION", "").strip()
    if rmw and "fastrtps" not in rmw:
        return MiddlewarePlan(None, None, f"middleware {rmw}: gmt_ros's Fast DDS profile does not apply")
    if environ.get(OPT_OUT_ENV, "").strip() == "1":
        return MiddlewarePlan(None, None, leave.format(f"{OPT_OUT_ENV}=1"))
    own = environ.get(PROFILE_ENV, "").strip()
    ours = own and Path(own) in (localhost, other)
    if own and not ours:
        return MiddlewarePlan(None, None, leave.format(f"your profile {own}"))
    wanted = discovery_range(environ)
    # A child of a process that applied the LOCALHOST plan inherits SYSTEM_DEFAULT + that profile.
    if wanted == "LOCALHOST" or (wanted == "SYSTEM_DEFAULT" and own and Path(own) == localhost):
        if environ.get("ROS_STATIC_PEERS", "").strip():
            return MiddlewarePlan(None, None, leave.format("LOCALHOST with ROS_STATIC_PEERS"))
        return MiddlewarePlan(localhost, "SYSTEM_DEFAULT",
                              f"Fast DDS over UDP on loopback only, discovery on 127.0.0.1, no shared memory ({localhost})")
    if wanted == "OFF":
        return MiddlewarePlan(None, None, leave.format("discovery OFF"))
    return MiddlewarePlan(other, None, f"Fast DDS over UDP, discovery range {wanted}, no shared memory ({other})")


def apply(environ: MutableMapping[str, str] | None = None) -> str:
    """Put the plan into ``environ`` (default: this process's environment); the plan's line."""
    env = os.environ if environ is None else environ
    chosen = plan(env)
    if chosen.profile is not None:
        env[PROFILE_ENV] = str(chosen.profile)
    if chosen.discovery_range is not None:
        env[RANGE_ENV] = chosen.discovery_range
    return chosen.text
