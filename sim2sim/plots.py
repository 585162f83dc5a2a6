"""Per-run plots of an :class:`sim2sim.evaluate.EpisodeTrace` (matplotlib, Agg: no display needed).

``plot_run`` writes four PNGs into a directory:

- joints.png   chosen joints: the robot (solid), the reference (dashed), the policy's target (thin);
- root.png     pelvis height and roll/pitch, robot vs reference, with the fall thresholds;
- errors.png   the four tracking errors per tick, with their upright-time means;
- torques.png  chosen joints' torques against their ±limits, and every joint's peak and RMS
               torque as a fraction of its limit.

A fall is marked by a red vertical line in every panel.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless, deterministic output
import matplotlib.pyplot as plt
import numpy as np

from gmt_ros.core import g1
from sim2sim import metrics

DEFAULT_PLOT_JOINTS: tuple[str, ...] = (
    "left_hip_pitch_joint",
    "left_knee_joint",
    "left_shoulder_pitch_joint",
    "waist_yaw_joint",
)
PLOT_FILES = ("joints.png", "root.png", "errors.png", "torques.png")
_DPI = 100


def resolve_joint_names(names: Sequence[str]) -> tuple[str, ...]:
    """G1 joint names from full names ("left_knee_joint") or without the suffix ("left_knee")."""
    out = []
    for name in names:
        full = name if name in g1.SLOT_OF else f"{name}_joint"
        if full not in g1.SLOT_OF:
            short = ", ".join(n.removesuffix("_joint") for n in g1.JOINT_NAMES)
            raise ValueError(f"unknown joint {name!r} to plot; known: {short}")
        out.append(full)
    if not out:
        raise ValueError("no joints to plot")
    return tuple(dict.fromkeys(out))


def _fall_time(trace) -> float | None:
    down = np.flatnonzero(~np.asarray(trace.upright, bool))
    return float(trace.time_s[down[0]]) if down.size else None


def _mark_fall(axes, fall_t: float | None) -> None:
    if fall_t is None:
        return
    for ax in np.ravel(axes):
        ax.axvline(fall_t, color="tab:red", lw=1.2, ls="-", alpha=0.8)


def _short(name: str) -> str:
    return name.removesuffix("_joint").replace("_", " ")


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def plot_joints(trace, joints: Sequence[str], path: str | Path, title: str = "") -> Path:
    joints = resolve_joint_names(joints)
    fig, axes = plt.subplots(len(joints), 1, figsize=(9, 1.9 * len(joints) + 0.8), sharex=True, squeeze=False)
    t = trace.time_s
    for ax, name in zip(axes[:, 0], joints):
        s = g1.SLOT_OF[name]
        ax.plot(t, trace.joint_pos[:, s], color="tab:blue", lw=1.4, label="robot")
        ax.plot(t, trace.ref_joint_pos[:, s], color="black", lw=1.2, ls="--", label="reference")
        ax.plot(t, trace.target_joint_pos[:, s], color="tab:orange", lw=0.7, alpha=0.8, label="policy target")
        tracked = "" if trace.joint_mask[s] else " (not tracked)"
        ax.set_ylabel(f"{_short(name)}{tracked}\nrad", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("time (s)")
    _mark_fall(axes, _fall_time(trace))
    fig.suptitle(f"joint tracking  {title}", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_root(trace, path: str | Path, title: str = "") -> Path:
    fig, (ax_h, ax_r) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    t = trace.time_s
    ax_h.plot(t, trace.root_height_m, color="tab:blue", lw=1.4, label="robot")
    ax_h.plot(t, trace.ref_root_height_m, color="black", lw=1.2, ls="--", label="reference")
    ax_h.axhline(metrics.FALL_MIN_PELVIS_HEIGHT_M, color="tab:red", lw=0.8, ls=":", label="fall height")
    ax_h.set_ylabel("pelvis height (m)")
    ax_h.legend(loc="lower left", fontsize=7, ncol=3)
    ax_r.plot(t, trace.roll_rad, color="tab:blue", lw=1.3, label="roll")
    ax_r.plot(t, trace.pitch_rad, color="tab:green", lw=1.3, label="pitch")
    ax_r.plot(t, trace.ref_roll_rad, color="tab:blue", lw=0.9, ls="--", label="ref roll")
    ax_r.plot(t, trace.ref_pitch_rad, color="tab:green", lw=0.9, ls="--", label="ref pitch")
    for sign in (-1, 1):
        ax_r.axhline(sign * metrics.FALL_MAX_TILT_RAD, color="tab:red", lw=0.8, ls=":")
    ax_r.set_ylabel("tilt (rad)")
    ax_r.set_xlabel("time (s)")
    ax_r.legend(loc="lower left", fontsize=7, ncol=4)
    for ax in (ax_h, ax_r):
        ax.grid(alpha=0.3)
    _mark_fall((ax_h, ax_r), _fall_time(trace))
    fig.suptitle(f"root height and tilt  {title}", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_errors(trace, path: str | Path, title: str = "") -> Path:
    panels = (("e_mpkpe_mm", "E_mpkpe (mm)"), ("e_mpjpe_rad", "E_mpjpe (rad)"),
              ("e_vel_mps", "E_vel (m/s)"), ("e_yaw_vel_radps", "E_yaw_vel (rad/s)"))
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 7.5), sharex=True)
    t = trace.time_s
    upright = np.asarray(trace.upright, bool)
    for ax, (key, label) in zip(axes, panels):
        values = getattr(trace, key)
        ax.plot(t, values, color="tab:purple", lw=1.0)
        if upright.any():
            mean = float(np.mean(values[upright]))
            ax.axhline(mean, color="black", lw=0.8, ls="--")
            ax.text(0.995, 0.92, f"upright mean {mean:.3g}", transform=ax.transAxes, ha="right", va="top",
                    fontsize=7)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    _mark_fall(axes, _fall_time(trace))
    fig.suptitle(f"tracking errors per tick  {title}", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_torques(trace, joints: Sequence[str], path: str | Path, title: str = "") -> Path:
    joints = resolve_joint_names(joints)
    fig, (ax_t, ax_b) = plt.subplots(2, 1, figsize=(10, 7.5), gridspec_kw={"height_ratios": [1.1, 1.0]})
    t = trace.time_s
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(joints):
        s = g1.SLOT_OF[name]
        c = colors[i % len(colors)]
        ax_t.plot(t, trace.joint_tau[:, s], color=c, lw=1.0, label=f"{_short(name)} (±{trace.tau_limit[s]:g} N·m)")
        for sign in (-1, 1):
            ax_t.axhline(sign * trace.tau_limit[s], color=c, lw=0.7, ls=":")
    ax_t.set_ylabel("torque (N·m)")
    ax_t.set_xlabel("time (s)")
    ax_t.legend(loc="upper right", fontsize=7, ncol=2)
    ax_t.grid(alpha=0.3)
    _mark_fall((ax_t,), _fall_time(trace))

    frac = np.abs(trace.joint_tau) / trace.tau_limit
    upright = np.asarray(trace.upright, bool)
    if upright.any():
        frac = frac[upright]
    peak = frac.max(axis=0) if frac.size else np.zeros(g1.NUM_BODY_JOINTS)
    rms = np.sqrt(np.mean(frac ** 2, axis=0)) if frac.size else np.zeros(g1.NUM_BODY_JOINTS)
    x = np.arange(g1.NUM_BODY_JOINTS)
    ax_b.bar(x - 0.2, peak, width=0.4, color="tab:red", alpha=0.7, label="peak |τ| / limit")
    ax_b.bar(x + 0.2, rms, width=0.4, color="tab:blue", alpha=0.7, label="RMS |τ| / limit")
    ax_b.axhline(1.0, color="black", lw=0.8, ls="--")
    ax_b.set_xticks(x, [_short(n) for n in trace.joint_names], rotation=75, fontsize=6.5)
    ax_b.set_ylim(0, max(1.1, float(peak.max()) * 1.05 if peak.size else 1.1))
    ax_b.set_ylabel("fraction of limit")
    ax_b.legend(loc="upper right", fontsize=7)
    ax_b.grid(alpha=0.3, axis="y")
    fig.suptitle(f"joint torques (sampled at the policy rate)  {title}", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_run(trace, out_dir: str | Path, joints: Sequence[str] | None = None, title: str = "") -> list[Path]:
    """The four PNGs of one run into ``out_dir`` (created); returns their paths."""
    if trace is None or len(trace) == 0:
        raise ValueError("cannot plot a run without trace rows (run it with trace=True)")
    joints = resolve_joint_names(joints or DEFAULT_PLOT_JOINTS)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        plot_joints(trace, joints, out / PLOT_FILES[0], title),
        plot_root(trace, out / PLOT_FILES[1], title),
        plot_errors(trace, out / PLOT_FILES[2], title),
        plot_torques(trace, joints, out / PLOT_FILES[3], title),
    ]
