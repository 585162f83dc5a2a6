"""The settings of a distillation run (no PyTorch import: the command line reads its defaults)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

TRAIN_SEED_BASE = 1_000_000  # DR seeds of training episodes start here (evaluation uses 0, 1, ...)


@dataclass(frozen=True)
class DistillConfig:
    teacher: str = "twist2_student"
    student: str = "gmt_student"
    motions: tuple[str, ...] = ()  # library clip names or groups; () = every shipped clip
    dr: str = "gmt"
    iterations: int = 12
    episodes_per_iteration: int = 39
    first_episodes: int = 117  # iteration 1 (the teacher alone: the behaviour-cloning start)
    seconds: float | None = None  # cap on an episode's length (None: the whole clip)
    first_share: float = 1.0  # teacher share in iteration 0
    share_decay: float = 0.6  # multiplied per iteration
    teacher_noise: float = 0.2  # std of the noise on the teacher's sent actions (raw units, DART)
    min_share: float = 0.05  # below this the share is 0 (the student alone)
    default_start_fraction: float = 0.25  # episodes starting from the default standing pose
    no_dr_fraction: float = 0.1  # episodes without randomisation
    fail_weight: float = 3.0  # clip weight 1 + fail_weight * (the student's fall fraction on it)
    hidden: tuple[int, ...] = (512, 256, 128)
    lr: float = 1e-3
    lr_decay: float = 0.93  # per iteration
    weight_decay: float = 1e-4  # AdamW
    batch_size: int = 2048
    train_samples: int = 2_500_000  # samples drawn (with replacement) per iteration
    max_samples: int = 600_000  # aggregate cap (oldest dropped)
    holdout_every: int = 20
    seed: int = 0
    jobs: int = 2

    def check(self) -> None:
        def need(ok: bool, text: str) -> None:
            if not ok:
                raise ValueError(text)

        for name in ("iterations", "episodes_per_iteration", "first_episodes", "batch_size", "train_samples", "max_samples",
                     "holdout_every", "jobs"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                 f"{name} must be a positive integer, got {value!r}")
        for name in ("first_share", "share_decay", "min_share", "default_start_fraction", "no_dr_fraction"):
            value = getattr(self, name)
            need(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        need(self.fail_weight >= 0, f"fail_weight must be >= 0, got {self.fail_weight}")
        need(self.teacher_noise >= 0 and self.weight_decay >= 0,
             f"teacher_noise and weight_decay must be >= 0, got {self.teacher_noise}, {self.weight_decay}")
        need(self.lr > 0 and 0 < self.lr_decay <= 1, f"lr must be > 0 and lr_decay in (0, 1], got {self.lr}, {self.lr_decay}")
        need(len(self.hidden) >= 1 and all(isinstance(h, int) and h >= 1 for h in self.hidden),
             f"hidden must list positive layer widths, got {self.hidden}")
        need(self.seconds is None or self.seconds > 0, f"seconds must be positive, got {self.seconds}")
        need(isinstance(self.seed, int) and self.seed >= 0, f"seed must be a non-negative integer, got {self.seed}")

    def as_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, data: dict) -> DistillConfig:
        data = dict(data)
        for key in ("motions", "hidden"):
            data[key] = tuple(data[key])
        return cls(**data)


def teacher_share(cfg: DistillConfig, iteration: int) -> float:
    share = cfg.first_share * cfg.share_decay ** iteration
    return 0.0 if share < cfg.min_share else float(share)
