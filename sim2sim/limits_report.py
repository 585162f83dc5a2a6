"""Calibration of the command limits' gross margin (``CommandLimits.gross_margin_rad``).

The bridge refuses (fault, damping) a q target beyond a joint limit by more than the gross
margin, and clips smaller excursions. A trained policy in normal tracking does ask for targets
past the limits (its PD targets lead the joint; the ankles most), so the margin must sit clearly
above what normal tracking reaches, yet below what a broken policy sends.

For each clip x start x DR preset x seed this runs the episode twice in ``sim2sim.evaluate``:
raw targets, and through the bridge's limits with the gross check switched off (margin = inf,
so a too-small margin cannot cut the episode short), and reports the raw targets' largest
excess beyond a joint limit and the tracking of both. Then it checks that a broken policy (the
network's actions x ``--broken-scale``, 100 by default) is refused at the recommended margin.
One process, episodes one after another.

    python -m sim2sim.limits_report     # every clip, both starts, DR none + gmt and hard seeds 0-4:
                                        # 286 cases x 2 runs, about 30 min on one core
    python -m sim2sim.limits_report --clips gmt/squat --dr none --seconds 3 --json out.json

Its result sets ``gmt_ros.core.command_limits.GROSS_MARGIN_RAD`` (see that module's docstring).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass

from gmt_ros.core.command_limits import CommandLimits

DEFAULT_FACTOR = 1.5  # margin >= this x the worst excess of normal tracking
MARGIN_STEP = 0.1  # the recommended margin is rounded up to this (rad)


@dataclass
class Row:
    """One clip x start x DR x seed: the raw run and the limited run (gross check off)."""

    clip: str
    start: str
    dr: str
    seed: int
    raw_excess_rad: float
    raw_excess_joint: str | None
    raw_e_mpjpe_rad: float
    raw_e_mpkpe_mm: float
    raw_upright: bool
    lim_excess_rad: float
    lim_excess_joint: str | None
    lim_e_mpjpe_rad: float
    lim_e_mpkpe_mm: float
    lim_upright: bool
    lim_clipped: tuple[int, int, int]  # joint, velocity, torque (slot x bridge ticks)
    duration_s: float

    @property
    def worst_excess_rad(self) -> float:
        """Of both runs, fallen or not."""
        return max(self.raw_excess_rad, self.lim_excess_rad)

    @property
    def upright_excess_rad(self) -> float:
        """Of the runs that stayed upright (normal tracking); -inf when both fell."""
        return max(self.raw_excess_rad if self.raw_upright else -math.inf,
                   self.lim_excess_rad if self.lim_upright else -math.inf)


class _ScaledNetwork:
    """The policy network with its raw actions multiplied: a broken policy (the TrackingPolicy
    still clips the actions to ±action_clip, as it would on the robot)."""

    def __init__(self, network, scale: float):
        self.network, self.scale = network, scale

    def __call__(self, observation):
        return self.network(observation) * self.scale


def measure(contract, clip, start: str, dr: str | None, seed: int, seconds: float | None = None,
            policy=None) -> Row:
    from sim2sim.evaluate import run_episode

    dr_arg = None if dr in (None, "none") else dr
    # The fall check off: it would cut a run short at its threshold, hiding what the targets did next.
    raw = run_episode(contract, clip, seconds, seed=seed, start=start, dr=dr_arg, policy=policy, command_limits=None,
                      fall_check=None)
    lim = run_episode(contract, clip, seconds, seed=seed, start=start, dr=dr_arg, policy=policy,
                      command_limits=CommandLimits(gross_margin_rad=math.inf), fall_check=None)
    c = lim.clipped
    return Row(
        clip=clip.name if clip.name else "?", start=start, dr=dr or "none", seed=seed,
        raw_excess_rad=raw.max_target_excess_rad, raw_excess_joint=raw.max_target_excess_joint,
        raw_e_mpjpe_rad=raw.errors["e_mpjpe_rad"], raw_e_mpkpe_mm=raw.errors["e_mpkpe_mm"], raw_upright=not raw.fell,
        lim_excess_rad=lim.max_target_excess_rad, lim_excess_joint=lim.max_target_excess_joint,
        lim_e_mpjpe_rad=lim.errors["e_mpjpe_rad"], lim_e_mpkpe_mm=lim.errors["e_mpkpe_mm"], lim_upright=not lim.fell,
        lim_clipped=(c.joint_limit, c.velocity_limit, c.torque_limit), duration_s=raw.requested_s,
    )


def recommend_margin(rows, factor: float = DEFAULT_FACTOR, step: float = MARGIN_STEP) -> float:
    """The smallest multiple of ``step`` at least ``factor`` x the worst excess of normal
    tracking (runs that stayed upright; a run that fell was lost anyway, and damping it early
    takes nothing from it) in ``rows``."""
    worst = max(r.upright_excess_rad for r in rows)
    if not math.isfinite(worst):
        raise ValueError("no run stayed upright: nothing to calibrate on")
    return step * math.ceil(max(worst, 0.0) * factor / step - 1e-9)


def broken_policy_check(contract, clip, margin: float, scale: float = 100.0, seconds: float = 1.0):
    """Run ``clip`` with the policy's actions x ``scale`` through limits with ``margin``; returns
    the EpisodeResult (``command_fault`` set when the bridge refuses it)."""
    from gmt_ros.core.policy import TrackingPolicy
    from sim2sim.evaluate import run_episode

    broken = TrackingPolicy(contract)
    broken.network = _ScaledNetwork(broken.network, scale)
    return run_episode(contract, clip, seconds, start="default", policy=broken,
                       command_limits=CommandLimits(gross_margin_rad=margin), fall_check=None)


def table_markdown(rows) -> str:
    lines = ["| clip | start | DR | seed | max excess raw rad (joint) | max excess limited rad | "
             "E_mpjpe raw / limited rad | E_mpkpe raw / limited mm | upright raw / limited | clipped j/v/t |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    yes = {True: "yes", False: "FELL"}
    for r in rows:
        joint = (r.raw_excess_joint or "-").replace("_joint", "")
        lines.append(
            f"| {r.clip} | {r.start} | {r.dr} | {r.seed} | {r.raw_excess_rad:+.3f} ({joint}) | {r.lim_excess_rad:+.3f} | "
            f"{r.raw_e_mpjpe_rad:.4f} / {r.lim_e_mpjpe_rad:.4f} | {r.raw_e_mpkpe_mm:.1f} / {r.lim_e_mpkpe_mm:.1f} | "
            f"{yes[r.raw_upright]} / {yes[r.lim_upright]} | {'/'.join(str(x) for x in r.lim_clipped)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from sim2sim.sweep import add_sweep_arguments, run_sweep, sweep_inputs

    ap = argparse.ArgumentParser(prog="python -m sim2sim.limits_report", description=__doc__.split("\n\n")[0])
    add_sweep_arguments(ap)
    ap.add_argument("--factor", type=float, default=DEFAULT_FACTOR, help="margin >= factor x worst excess")
    ap.add_argument("--broken-scale", type=float, default=100.0, help="action multiplier of the broken policy")
    args = ap.parse_args(argv)

    contract, policy, clips, plan = sweep_inputs(args)
    rows = run_sweep(
        plan, lambda name, start, dr, seed: measure(contract, clips[name], start, dr, seed, args.seconds, policy=policy),
        lambda row: (f"excess raw {row.raw_excess_rad:+.3f} ({row.raw_excess_joint}) limited {row.lim_excess_rad:+.3f}; "
                     f"E_mpjpe {row.raw_e_mpjpe_rad:.4f} / {row.lim_e_mpjpe_rad:.4f}; "
                     f"upright {row.raw_upright} / {row.lim_upright}"))

    worst = max(rows, key=lambda r: r.upright_excess_rad)
    worst_any = max(rows, key=lambda r: r.worst_excess_rad)
    margin = recommend_margin(rows, args.factor)
    current = CommandLimits().gross_margin_rad
    broken = broken_policy_check(contract, next(iter(clips.values())), margin, args.broken_scale)
    table = table_markdown(rows)
    print(table)
    print(f"worst excess of normal tracking (runs that stayed upright): {worst.upright_excess_rad:.3f} rad "
          f"({worst.clip}, start {worst.start}, DR {worst.dr} seed {worst.seed})")
    print(f"worst excess of any run, falls included: {worst_any.worst_excess_rad:.3f} rad ({worst_any.clip}, "
          f"start {worst_any.start}, DR {worst_any.dr} seed {worst_any.seed}); runs that fell: "
          f"{sum(not (r.raw_upright and r.lim_upright) for r in rows)}")
    print(f"recommended gross_margin_rad: {margin:.2f} (>= {args.factor:g} x worst upright, step {MARGIN_STEP:g}); "
          f"current default {current:.2f}: {sum(r.upright_excess_rad > current for r in rows)} of {len(rows)} "
          f"upright runs would fault at it")
    verdict = "refused" if broken.command_fault else "NOT refused"
    print(f"broken policy (actions x {args.broken_scale:g}) at margin {margin:.2f}: {verdict}"
          + (f" at {broken.fall_time_s:.3f} s: {broken.command_fault}" if broken.command_fault else ""))
    if args.json:
        out = {"rows": [asdict(r) | {"worst_excess_rad": r.worst_excess_rad,
                                     "upright_excess_rad": r.upright_excess_rad} for r in rows],
               "worst_upright_excess_rad": worst.upright_excess_rad,
               "worst_any_excess_rad": worst_any.worst_excess_rad, "recommended_margin_rad": margin, "factor": args.factor,
               "current_margin_rad": current, "broken_scale": args.broken_scale,
               "broken_refused": broken.command_fault is not None, "broken_fault": broken.command_fault,
               "broken_fault_time_s": broken.fall_time_s, "command": ["python", "-m", "sim2sim.limits_report",
                                                                      *(argv if argv is not None else sys.argv[1:])]}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    return 0 if broken.command_fault else 1


if __name__ == "__main__":
    sys.exit(main())
