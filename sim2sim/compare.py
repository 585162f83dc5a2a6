"""Policies side by side on the same clips and seeds (``gmt-ros compare``).

Each policy runs every (clip, seed) of ``sim2sim.batch`` under each randomisation preset; the
runs of one (clip, seed) share their randomisation draw, so the comparison is paired. The table
gives, per preset and policy, the fall rate and the tracking errors of ``sim2sim.batch.summarize``
plus **E_mpjpe on the common joints**: the policies' metric averages over each policy's own joints
that the clip supplies (29 for the TWIST2 student on a 29-joint clip, 23 for a GMT-contract
student), so the table also recomputes it from the per-tick traces over the joints every compared
policy drives, the same for all of them.

Acceptance (the first policy is the reference, e.g. the teacher): for each other policy, on a
preset with randomisation, its fall rate is at most the reference's + ``max_extra_fall_points``
and its E_mpjpe at most ``max_mpjpe_ratio`` times the reference's; without randomisation, no fall.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim2sim import batch

BEGIN_MARK = "<!-- comparison table: gmt-ros compare writes below -->"
END_MARK = "<!-- end comparison table -->"


@dataclass(frozen=True)
class Criteria:
    max_extra_fall_points: float = 5.0  # percentage points above the reference's fall rate
    max_mpjpe_ratio: float = 1.1


def common_joint_mask(policies: Sequence[str]) -> np.ndarray:
    """Slots every policy drives (29,)."""
    from gmt_ros.core import g1
    from gmt_ros.core.contract import load_contract

    mask = np.ones(g1.NUM_BODY_JOINTS, bool)
    for name in policies:
        driven = np.zeros(g1.NUM_BODY_JOINTS, bool)
        driven[load_contract(name).slots] = True
        mask &= driven
    return mask


def trace_mpjpe(trace, joints: np.ndarray) -> float | None:
    """A run's E_mpjpe (the mean over its scored ticks of the mean |q - q_ref|) over ``joints``
    ∩ the joints the clip supplies; None without a scored tick. Scored ticks are the trace's
    ``upright`` rows (the fall or fault tick is not scored)."""
    mask = np.asarray(joints, bool) & np.asarray(trace.joint_mask, bool)
    rows = np.asarray(trace.upright, bool)
    if not rows.any() or not mask.any():
        return None
    err = np.abs(trace.joint_pos[rows] - trace.ref_joint_pos[rows])[:, mask]
    return float(np.mean(err.mean(axis=1)))


def add_common_mpjpe(rows: list[dict], out_dir: Path, joints: np.ndarray) -> None:
    """``e_mpjpe_common_rad`` in every row, from its saved trace (``row['trace']``)."""
    from sim2sim.evaluate import EpisodeTrace

    for row in rows:
        row["e_mpjpe_common_rad"] = trace_mpjpe(EpisodeTrace.load_npz(out_dir / row["trace"]), joints)


def summarize_policy(rows: Sequence[dict]) -> dict:
    s = batch.summarize_rows(rows)
    values = [r["e_mpjpe_common_rad"] for r in rows if r.get("e_mpjpe_common_rad") is not None]
    s["e_mpjpe_common_rad"] = float(np.mean(values)) if values else None
    return s


def verdicts(summaries: dict[str, dict], dr: str, criteria: Criteria) -> list[str]:
    """One line per non-reference policy: the acceptance checks and whether each holds."""
    names = list(summaries)
    ref_name, ref = names[0], summaries[names[0]]
    lines = []
    for name in names[1:]:
        s = summaries[name]
        if dr == "none":
            ok = s["falls"] == 0
            lines.append(f"- `{name}` without randomisation: {s['falls']} of {s['runs']} runs fell "
                         f"({'meets' if ok else 'fails'} 'no fall').")
            continue
        ref_rate = 100.0 * ref["falls"] / ref["runs"]
        rate = 100.0 * s["falls"] / s["runs"]
        fall_ok = rate <= ref_rate + criteria.max_extra_fall_points
        ratio = _ratio(s["e_mpjpe_rad"]["value"], ref["e_mpjpe_rad"]["value"])
        common = _ratio(s["e_mpjpe_common_rad"], ref["e_mpjpe_common_rad"])
        mpjpe_ok = ratio is not None and ratio <= criteria.max_mpjpe_ratio
        lines.append(
            f"- `{name}` vs `{ref_name}` under `{dr}`: fall rate {rate:.1f} % vs {ref_rate:.1f} % "
            f"({rate - ref_rate:+.1f} points; limit +{criteria.max_extra_fall_points:g}: "
            f"{'met' if fall_ok else 'NOT met'}); E_mpjpe {_ratio_text(ratio)} × the reference's (limit "
            f"{criteria.max_mpjpe_ratio:g}: {'met' if mpjpe_ok else 'NOT met'}); on the common joints "
            f"{_ratio_text(common)} ×.")
    return lines


def _ratio(a, b) -> float | None:
    if a is None or b is None or not b or not math.isfinite(a) or not math.isfinite(b):
        return None
    return a / b


def _ratio_text(r: float | None) -> str:
    return "–" if r is None else f"{r:.3f}"


def _iv(iv: dict, digits: int, scale: float = 1.0) -> str:
    if iv["value"] is None:
        return "–"
    text = f"{iv['value'] * scale:.{digits}f}"
    if iv.get("low") is not None and iv.get("high") is not None:
        text += f" [{iv['low'] * scale:.{digits}f}, {iv['high'] * scale:.{digits}f}]"
    return text


def comparison_markdown(results: dict[str, dict[str, list[dict]]], seeds: dict[str, list[int]],
                        criteria: Criteria, meta: dict) -> str:
    """``results[dr][policy]`` = the run rows. Overall table per preset, acceptance lines, then
    falls and E_mpjpe per clip."""
    lines = [f"Policies on the same {meta['clips']} clips and seeds "
             f"(`{meta['command']}`, commit {meta.get('commit') or 'unknown'}, {meta['wall_s']:.0f} s on "
             f"{meta['jobs']} workers, send path `{meta.get('send_path', 'bridge')}`); the first policy is the "
             "reference. Intervals 95 % (Wilson for fall rates, "
             "Student-t over runs for errors). E_mpjpe common: over the joints every policy drives.", ""]
    head = ("| DR | policy | runs | falls | fall rate % | E_mpjpe rad | E_mpjpe common rad | E_mpkpe mm | "
            "E_vel m/s | E_yaw_vel rad/s |")
    lines += [head, "|---|---|---|---|---|---|---|---|---|---|"]
    summaries: dict[str, dict[str, dict]] = {}
    for dr, by_policy in results.items():
        summaries[dr] = {p: summarize_policy(rows) for p, rows in by_policy.items()}
        for policy, s in summaries[dr].items():
            common = s["e_mpjpe_common_rad"]
            lines.append(f"| {dr} ({_seed_text(seeds[dr])}) | {policy} | {s['runs']} | {s['falls']} | "
                         f"{_iv(s['fall_rate'], 1, 100.0)} | {_iv(s['e_mpjpe_rad'], 3)} | "
                         f"{'–' if common is None else f'{common:.3f}'} | {_iv(s['e_mpkpe_mm'], 1)} | "
                         f"{_iv(s['e_vel_mps'], 3)} | {_iv(s['e_yaw_vel_radps'], 3)} |")
    lines.append("")
    for dr in results:
        lines += verdicts(summaries[dr], dr, criteria)
    for dr, by_policy in results.items():
        policies = list(by_policy)
        lines += ["", f"Per clip, `{dr}`: falls / runs, E_mpjpe rad (" + " | ".join(policies) + ")", ""]
        lines.append("| clip | " + " | ".join(f"{p} falls" for p in policies) + " | "
                     + " | ".join(f"{p} E_mpjpe" for p in policies) + " |")
        lines.append("|---|" + "---|" * (2 * len(policies)))
        clips = sorted({r["clip"] for rows in by_policy.values() for r in rows})
        for clip in clips:
            falls, errs = [], []
            for p in policies:
                rows = [r for r in by_policy[p] if r["clip"] == clip]
                falls.append(f"{sum(bool(r['fell']) for r in rows)}/{len(rows)}")
                vals = [r["e_mpjpe_rad"] for r in rows if r.get("e_mpjpe_rad") is not None]
                errs.append(f"{np.mean(vals):.3f}" if vals else "–")
            lines.append(f"| {clip} | " + " | ".join(falls) + " | " + " | ".join(errs) + " |")
    return "\n".join(lines) + "\n"


def _seed_text(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {seeds[0]}–{seeds[-1]}"


def write_between_marks(path: Path, text: str) -> None:
    """Replace what lies between BEGIN_MARK and END_MARK in ``path`` (both must be there)."""
    content = path.read_text()
    if BEGIN_MARK not in content or END_MARK not in content:
        raise ValueError(f"{path} has no comparison section (lines {BEGIN_MARK!r} ... {END_MARK!r})")
    before, rest = content.split(BEGIN_MARK, 1)
    _, after = rest.split(END_MARK, 1)
    path.write_text(before + BEGIN_MARK + "\n" + text.rstrip("\n") + "\n" + END_MARK + after)
