"""`gmt-ros distill`: train the GMT-contract student from the shipped TWIST2 student by DAgger
(gmt_ros/training/distill.py), on the CPU, in the in-process simulator.

    gmt-ros distill [--out out/distill] [--resume | --fresh] [--iterations 12] [--seed 0]
                    [--dr gmt] [--jobs 2] [--max-minutes 85] [--export PATH] ...

Needs the training extra (scripts/setup.sh installs it; or ``pip install -r requirements-train.txt``).
"""
from __future__ import annotations

import importlib.util
import os
import signal
import sys

from gmt_ros.tools import UsageError
from gmt_ros.tools.evaluate import commit_text
from gmt_ros.training.config import DistillConfig

TRAINING_EXTRA = ("torch", "onnx", "onnxscript")


def missing_training_extra() -> list[str]:
    """The training extra's modules that are not installed (checked without importing them)."""
    return [m for m in TRAINING_EXTRA if importlib.util.find_spec(m) is None]


def cmd_distill(args) -> int:
    missing = missing_training_extra()
    if missing:
        raise UsageError(f"the training extra is not installed (missing {', '.join(missing)}): "
                         "run 'bash scripts/setup.sh' or '.venv/bin/pip install -r requirements-train.txt'")
    from gmt_ros.training import distill
    from gmt_ros.training.config import DistillConfig

    try:
        cfg = DistillConfig(
            teacher=args.teacher, student=args.student, motions=tuple(args.motions or ()), dr=args.dr,
            iterations=args.iterations, episodes_per_iteration=args.episodes, first_episodes=args.first_episodes,
            share_decay=args.share_decay, teacher_noise=args.teacher_noise, seconds=args.seconds,
            hidden=tuple(args.hidden), train_samples=args.train_samples, max_samples=args.max_samples,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed, jobs=args.jobs)
        cfg.check()
        from sim2sim.randomization import DomainRandomization

        DomainRandomization.load(cfg.dr)
        if args.fresh:
            distill.reset_output(args.out)
        # SIGTERM ends the run like Ctrl-C: the rollout workers are stopped, the last checkpoint stays
        signal.signal(signal.SIGTERM, _interrupted)
        distill.run(cfg, args.out, resume=args.resume, export_path=args.export, max_minutes=args.max_minutes,
                    evaluate=not args.no_eval, argv=["gmt-ros", *sys.argv[1:]], commit=commit_text())
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise UsageError(str(exc)) from None
    return 0


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def register(subparsers) -> None:
    p = subparsers.add_parser("distill", help="train the GMT-contract student from the TWIST2 student by DAgger (CPU)")
    p.add_argument("--out", default="out/distill", help="run directory: data, checkpoint, summary (default out/distill)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out after its last checkpoint")
    p.add_argument("--fresh", action="store_true", help="delete a previous run in --out and start over")
    d = DistillConfig()
    p.add_argument("--teacher", default=d.teacher, help="teacher policy (name under models/ or contract path)")
    p.add_argument("--student", default=d.student, help="student contract (name under models/ or path)")
    p.add_argument("--motions", nargs="*", default=list(d.motions),
                   help="shipped clips or groups (default: every shipped clip)")
    p.add_argument("--dr", default=d.dr, help=f"randomization preset of the rollouts (default {d.dr})")
    p.add_argument("--iterations", type=int, default=d.iterations)
    p.add_argument("--episodes", type=int, default=d.episodes_per_iteration,
                   help="episodes per iteration (every clip at least once)")
    p.add_argument("--first-episodes", type=int, default=d.first_episodes,
                   help="episodes of the first iteration (the teacher alone)")
    p.add_argument("--share-decay", type=float, default=d.share_decay,
                   help="teacher share multiplier per iteration (share 1 in the first)")
    p.add_argument("--teacher-noise", type=float, default=d.teacher_noise,
                   help="std of the noise on the teacher's sent actions (raw action units; labels stay clean)")
    p.add_argument("--seconds", type=float, default=d.seconds, help="cap each episode at S seconds (default: whole clip)")
    p.add_argument("--hidden", type=int, nargs="+", default=list(d.hidden), help="hidden layer widths")
    p.add_argument("--train-samples", type=int, default=d.train_samples, help="samples drawn per iteration")
    p.add_argument("--max-samples", type=int, default=d.max_samples, help="aggregate cap (oldest dropped)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--jobs", type=int, default=min(d.jobs, os.cpu_count() or 1), help="rollout workers / torch threads")
    p.add_argument("--max-minutes", type=float, default=85.0,
                   help="start no iteration that would end past this many minutes of training in all, every session "
                        "of a resumed run counted (default 85)")
    p.add_argument("--export", default=None, help="ONNX output (default: beside the student's contract)")
    p.add_argument("--no-eval", action="store_true", help="skip the closing evaluation without randomisation")
    p.set_defaults(func=cmd_distill)
