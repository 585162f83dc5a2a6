"""The robot's built-in motion service (locomotion), released so that low-level commands are obeyed.

Unitree's MotionSwitcher service answers CheckMode with the active mode's name; ReleaseMode ends it,
as Unitree's low-level examples do before writing rt/lowcmd. Needs the SDK channel factory
initialised. Not testable without a robot: kept this small.
"""
from __future__ import annotations

import time


def release_motion_service(logger, timeout_s: float = 3.0, attempts: int = 5) -> None:
    """CheckMode -> ReleaseMode until no mode is active. Raises RuntimeError when the service does
    not answer or a mode stays active."""
    from unitree_sdk2py.comm.motion_switcher.motion_switcher_client import MotionSwitcherClient

    client = MotionSwitcherClient()
    client.SetTimeout(timeout_s)
    client.Init()
    for attempt in range(1, attempts + 1):
        code, result = client.CheckMode()
        if code != 0:
            raise RuntimeError(
                f"release_motion_service: MotionSwitcher CheckMode failed (code {code}): the robot's service did "
                "not answer on this interface/domain; release it with the remote (L2+R2) or set release_motion_service false"
            )
        name = (result or {}).get("name", "")
        if not name:
            logger.info("release_motion_service: no built-in motion mode is active; low-level control is free")
            return
        logger.warning(f"release_motion_service: built-in motion mode {name!r} is active: ReleaseMode "
                       f"(attempt {attempt}/{attempts})")
        client.ReleaseMode()
        time.sleep(1.0)
    raise RuntimeError(f"release_motion_service: the built-in motion mode is still active after {attempts} ReleaseMode calls")
