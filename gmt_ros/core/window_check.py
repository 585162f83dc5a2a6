"""Whether a motion window may reach the policy: the reasons a window is refused.

The motion-target decoder (``gmt_ros.nodes.window_codec``) refuses malformed messages; this module
holds the error type both use and the checks that depend on time: a window must be recent and must
reach as far ahead as the policy looks. Each refusal carries a short ``reason`` code so a node can
rate-limit its log per reason while still naming the problem in full.
"""
from __future__ import annotations

from gmt_ros.core.frames import MotionWindow


class MotionTargetError(ValueError):
    """A motion target that must not reach the policy. ``reason`` is a short stable code
    (e.g. ``"unknown_joint"``, ``"stale"``); the message says what is wrong in words."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def check_window_timing(window: MotionWindow, now: float, max_age_s: float, horizon_s: float) -> None:
    """Raise MotionTargetError unless ``window`` is fit to use at time ``now``.

    ``max_age_s``: how old (or, with clocks out of step, how far in the future) the window's first
    frame may be. ``horizon_s``: how far past ``now`` the policy reads the reference; the window's
    last frame must reach ``now + horizon_s``, otherwise the policy would be fed a held pose that
    the producer never asked for.
    """
    if not max_age_s > 0:
        raise ValueError(f"max_age_s must be positive, got {max_age_s}")
    if not horizon_s >= 0:
        raise ValueError(f"horizon_s must be >= 0, got {horizon_s}")
    age = now - window.start_time
    if age > max_age_s:
        raise MotionTargetError("stale", f"motion target is {age:.3f} s old (window_max_age_s {max_age_s:g}); "
                                         "is the producer's clock in step with this one?")
    if age < -max_age_s:
        raise MotionTargetError("future", f"motion target starts {-age:.3f} s in the future "
                                          f"(more than window_max_age_s {max_age_s:g}); clocks out of step?")
    needed = now + horizon_s
    if window.end_time < needed - 1e-9:
        raise MotionTargetError(
            "too_short",
            f"motion target ends at +{window.end_time - now:.3f} s from now but the policy reads "
            f"{horizon_s:.3f} s ahead; send a longer window",
        )
