"""The model card of a distilled student (``MODEL_CARD.md`` beside its ONNX), written from a run's
summary; an existing comparison section (``gmt-ros compare``) is kept."""
from __future__ import annotations

import math
from pathlib import Path

from gmt_ros.training import model as student_model
from gmt_ros.training.config import TRAIN_SEED_BASE


def fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def write_model_card(path: Path, summary: dict, teacher_contract, student_contract) -> Path:
    """MODEL_CARD.md beside the ONNX; keeps an existing comparison section (``gmt-ros compare``)."""
    from sim2sim.compare import BEGIN_MARK, END_MARK
    from sim2sim.randomization import DomainRandomization

    cfg = summary["config"]
    hist = summary["history"]
    last = hist[-1] if hist else {}
    dr = DomainRandomization.load(cfg["dr"])
    lines = [
        f"# {student_contract.name}: a GMT-contract student distilled from {teacher_contract.name}",
        "",
        f"Trained here by DAgger on the CPU with `gmt-ros distill` (gmt_ros/training/): "
        f"{summary['iterations_done']} iterations, {summary['wall_s'] / 60:.1f} min of training in all, "
        f"finished {summary['finished_utc']}.",
        "",
        *_sessions(summary),
        "",
        "## What it is",
        "",
        f"- **Input**: the GMT contract's observation (`contract.yaml`): {student_contract.obs_dim} values "
        f"(20 reference frames at 1, 5, …, 95 control steps ahead, proprioception, 20 steps of history); "
        f"the normaliser is inside the graph. **Output**: {student_contract.action_dim} raw actions "
        f"(`target = default + 0.5 · clip(a, ±10)`), wrists held by the contract.",
        f"- **Network**: MLP {' → '.join(str(x) for x in [student_contract.obs_dim, *cfg['hidden'], student_contract.action_dim])}, "
        f"ELU, {summary['parameters']:,} parameters; inputs standardised with the mean/std of iteration 1's data "
        f"(std floored at {student_model.STD_FLOOR}) and clipped to ±{student_model.INPUT_CLIP:g}.",
        f"- **ONNX**: `{Path(summary['onnx']).name}`, opset {student_model.OPSET}, sha256 `{summary['onnx_sha256']}`; "
        f"max |ONNX − torch| {summary['onnx_check']['max_abs_diff']:.1e} on {summary['onnx_check']['samples']} "
        "recorded observations.",
        "",
        "## How it was trained",
        "",
        f"- **Teacher**: `{teacher_contract.name}` ({teacher_contract.obs_dim} inputs, {teacher_contract.action_dim} "
        "actions; sha256 " + f"`{teacher_contract.onnx_sha256 or 'n/a'}`), observing its own contract's observation "
        "of the same robot state and motion window. Labels map by joint name through the PD targets "
        "(`gmt_ros/training/mixture.py`); the teacher's wrist outputs are not used.",
        f"- **Clips** (shipped only, {len(summary['clips'])}): " + ", ".join(f"`{c}`" for c in summary["clips"]) + ".",
        f"- **Domain randomisation**: preset `{cfg['dr']}` ({', '.join(f'{k} {v}' for k, v in dr.ranges.items())}); "
        f"{cfg['no_dr_fraction']:.0%} of the episodes without it; {cfg['default_start_fraction']:.0%} start from the "
        "default standing pose, the rest in the clip's first frame. Training seeds start at "
        f"{TRAIN_SEED_BASE:,} (disjoint from evaluation seeds).",
        f"- **DAgger**: {summary['iterations_done']} iterations: {cfg['first_episodes']} episodes in the first (the "
        f"teacher alone), {cfg['episodes_per_iteration']} in each other; teacher share of the actions "
        f"{cfg['first_share']:g} in iteration 1, × {cfg['share_decay']:g} per iteration, 0 below {cfg['min_share']:g} "
        f"(drawn per tick); Gaussian noise of std {cfg['teacher_noise']:g} (raw action units) on the teacher's *sent* "
        "actions, labels clean (DART: states off the teacher's path, and a fed-back last action that is not the "
        "label). Every clip once per iteration, the other episodes drawn with weight "
        f"1 + {cfg['fail_weight']:g} × (the student's fall fraction on the clip in the last iteration). The student's "
        "`last_action` is the action executed (its own output, or the teacher's sent action in its joint space). "
        "Sent through `run_episode`'s default path (the bridge's command limits and fall check).",
        f"- **Optimisation**: MSE to the teacher's actions, AdamW (weight decay {cfg['weight_decay']:g}), "
        f"lr {cfg['lr']:g} × {cfg['lr_decay']:g}^iteration, "
        f"batch {cfg['batch_size']}, {cfg['train_samples']:,} samples drawn per iteration from the aggregate "
        f"(at most {cfg['max_samples']:,} samples); every {cfg['holdout_every']}th episode held out.",
        f"- **Wall time**: {summary['wall_s'] / 60:.1f} min on {summary['machine']['cpus']} CPUs "
        f"(torch {summary['machine']['torch']}), seed {cfg['seed']}"
        + (f"; {summary['stopped_early']}" if summary.get("stopped_early") else "") + ".",
        f"- **Final losses**: training MSE {fmt(last.get('train_mse'))}, held-out MSE {fmt(last.get('val_mse'))} "
        f"(initial {fmt(summary.get('initial_mse'))}); in the last iteration's rollouts the student's actions were "
        f"{fmt(last.get('student_action_error'))} from the teacher's (mean |Δa|).",
        "",
        "| iteration | teacher share | episodes | samples | aggregate | fell | fell (student acting) | "
        "mean abs Δa student | train MSE | held-out MSE | rollouts s | training s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for h in hist:
        lines.append(
            f"| {h['iteration']} | {h['teacher_share']:.3f} | {h['episodes']} | {h['samples']} | {h['aggregate']} | "
            f"{h['falls']} | {h['student_falls']}/{h['student_episodes']} | {fmt(h['student_action_error'])} | "
            f"{h['train_mse']:.4f} | {fmt(h['val_mse'])} | {h['wall_s']['rollouts']:.0f} | {h['wall_s']['training']:.0f} |")
    if summary.get("evaluation"):
        rows = summary["evaluation"]
        lines += ["", "## Evaluation without randomisation (every training clip, seed 0, at the end of training)", "",
                  "| clip | s | fell | E_mpjpe rad | E_mpkpe mm | E_vel m/s | E_yaw_vel rad/s | min pelvis m |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['clip']} | {r['duration_s']:.1f} | {'yes' if r['fell'] else 'no'} | "
                         f"{_num(r['e_mpjpe_rad'], 3)} | {_num(r['e_mpkpe_mm'], 1)} | {_num(r['e_vel_mps'], 3)} | "
                         f"{_num(r['e_yaw_vel_radps'], 3)} | {r['min_pelvis_height_m']:.2f} |")
        lines.append(f"\n{sum(bool(r['fell']) for r in rows)} of {len(rows)} fell.")
    previous = path.read_text() if path.is_file() else ""
    comparison = _between(previous, BEGIN_MARK, END_MARK)
    lines += ["", "## Teacher vs student on the same clips and seeds", "", BEGIN_MARK,
              comparison.strip("\n") if comparison else
              "(not measured yet: `gmt-ros compare --policies twist2_student gmt_student --dr none gmt "
              "--seeds 10 --out out/compare --write-into models/gmt_student/MODEL_CARD.md README.md`)",
              END_MARK, ""]
    path.write_text("\n".join(lines))
    return path


def _num(x, digits: int) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _between(text: str, begin: str, end: str) -> str | None:
    if begin in text and end in text:
        return text.split(begin, 1)[1].split(end, 1)[0]
    return None


def _sessions(summary: dict) -> list[str]:
    """The invocations that made the run (a resumed run has several), or the last one's command."""
    sessions = summary.get("sessions") or [{"command": summary.get("command"), "commit": summary.get("commit")}]
    lines = ["| session | command | commit | iterations | minutes |", "|---|---|---|---|---|"]
    for k, sess in enumerate(sessions, 1):
        command = " ".join(sess.get("command") or ["gmt-ros", "distill"])
        span = (f"{sess['from_iteration'] + 1}–{sess['to_iteration']}" if "from_iteration" in sess else "–")
        minutes = f"{sess['minutes']:.1f}" if sess.get("minutes") is not None else "–"
        lines.append(f"| {k} | `{command}` | {sess.get('commit') or 'unknown'} | {span} | {minutes} |")
    return lines
