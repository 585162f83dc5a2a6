"""Poses by name: the floating base as seven virtual joints plus G1 joints in any order.

The motion-target window (``gmt_ros.nodes.window_codec``) and a live stream's frames
(``gmt_ros.core.stream_frame``) both name their columns this way, so both find them here, with
the same refusals: a name twice, a floating-base column missing, a name that is neither.
"""
from __future__ import annotations

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.reference import QUAT_NORM_RANGE  # noqa: F401 (one range for clips, windows and frames)
from gmt_ros.core.window_check import MotionTargetError

FLOATING_BASE_JOINTS: tuple[str, ...] = (
    "floating_base_x", "floating_base_y", "floating_base_z",
    "floating_base_qw", "floating_base_qx", "floating_base_qy", "floating_base_qz",
)


def named_columns(names, what: str = "motion target", error=MotionTargetError):
    """(floating-base columns in x, y, z, qw, qx, qy, qz order, robot-joint columns, their motor
    slots) of ``names``; raises ``error(reason, message)`` for duplicates, a missing floating-base
    joint and unknown names. ``what`` starts the message ("motion target", "stream frame")."""
    names = list(names)
    seen, dupes = set(), []
    for name in names:
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    if dupes:
        raise error("duplicate_joint", f"{what} names these joints more than once: {', '.join(dupes)}")
    missing = [n for n in FLOATING_BASE_JOINTS if n not in seen]
    if missing:
        raise error("missing_floating_base",
                    f"{what} lacks floating-base joints {', '.join(missing)} "
                    f"(the root pose is sent as {', '.join(FLOATING_BASE_JOINTS)})")
    unknown = [n for n in names if n not in g1.SLOT_OF and n not in FLOATING_BASE_JOINTS]
    if unknown:
        raise error("unknown_joint", f"{what} names unknown joints: {', '.join(unknown)} "
                                     "(robot joints use the G1 names, e.g. left_knee_joint)")
    base_cols = np.array([names.index(n) for n in FLOATING_BASE_JOINTS], dtype=np.int64)
    joint_cols = np.array([i for i, n in enumerate(names) if n in g1.SLOT_OF], dtype=np.int64)
    return base_cols, joint_cols, g1.slots_of([names[i] for i in joint_cols])
