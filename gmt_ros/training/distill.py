"""DAgger distillation of a student policy from a teacher, on the CPU (``gmt-ros distill``).

One iteration:

1. **Roll out** the current teacher/student mixture (``mixture.DaggerMixture``) on the shipped clips
   in the in-process simulator with domain randomisation (``rollouts``, a pool of worker
   processes). The teacher's share of the actions follows ``teacher_share`` (1 in iteration 0:
   behaviour cloning on the teacher's own states; then halving; 0 once below ``min_share``: the
   student alone, still labelled by the teacher). Every visited state is labelled with the
   teacher's action. Clips the student fell on in the previous iteration get more episodes
   (``clip_weights``). Some episodes start from the default standing pose instead of the clip's
   first frame, some run without randomisation.
2. **Aggregate**: the iteration's (observation, label) pairs join every earlier iteration's (up to
   ``max_samples``, oldest dropped first). Episodes ``k % holdout_every == holdout_every - 1`` are
   held out for validation.
3. **Train** the MLP (``model.StudentMLP``, normaliser fixed from iteration 0's data) on MSE to
   the labels for ``train_samples`` samples (Adam, learning rate decaying per iteration).
4. **Checkpoint** (``checkpoint.pt``: network, optimiser, history, clip statistics, wall time).
   The iteration's data are saved before training (``data/``), so a resumed run (``resume=True``)
   continues after the last complete step.

At the end the student is exported to ONNX (``export_path``, by default beside its contract),
checked against the torch network, its sha256 written into the contract, and a model card
written. Training seeds draw the randomisation from ``TRAIN_SEED_BASE`` on, disjoint from the
evaluation seeds (0, 1, ...).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from gmt_ros.core.policy import file_sha256
from gmt_ros.training import model as student_model
from gmt_ros.training.config import TRAIN_SEED_BASE, DistillConfig, teacher_share
from gmt_ros.training.model_card import fmt as _fmt
from gmt_ros.training.model_card import write_model_card
from gmt_ros.training.rollouts import EpisodeSpec, PolicyNames, RolloutPool

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
RESUMABLE_CHANGES = ("iterations", "jobs")  # a resumed run may go on longer, or with other workers


def training_clips(motions: tuple[str, ...]) -> dict[str, Path]:
    """The shipped clips named by ``motions`` (all when empty): training uses the library only."""
    from gmt_ros.core import paths
    from sim2sim import batch

    clips = batch.find_clips(list(motions))
    library = paths.motions_dir().resolve()
    outside = [name for name, p in clips.items() if library not in Path(p).resolve().parents]
    if outside:
        raise ValueError(f"distillation trains on the shipped clips (models/motions) only; not shipped: {outside}")
    batch.check_clips(clips)
    return clips


def clip_weights(cfg: DistillConfig, names: list[str], stats: dict[str, dict]) -> np.ndarray:
    """Sampling weight per clip: 1 + fail_weight * the fraction of the student's episodes on it
    that fell in the last iteration where the student acted (no data: 1)."""
    w = []
    for name in names:
        s = stats.get(name)
        fall = s["falls"] / s["episodes"] if s and s["episodes"] else 0.0
        w.append(1.0 + cfg.fail_weight * fall)
    return np.asarray(w)


def plan_episodes(cfg: DistillConfig, iteration: int, clips: dict[str, Path], stats: dict[str, dict],
                  student_onnx: str) -> list[EpisodeSpec]:
    """The iteration's episodes: every clip once, the rest drawn by ``clip_weights``."""
    rng = np.random.default_rng([cfg.seed, iteration, 1])
    names = list(clips)
    weights = clip_weights(cfg, names, stats)
    count = cfg.first_episodes if iteration == 0 else cfg.episodes_per_iteration
    picks = list(range(len(names)))
    extra = count - len(picks)
    if extra > 0:
        picks += list(rng.choice(len(names), size=extra, p=weights / weights.sum()))
    else:
        picks = list(rng.permutation(len(names))[:count])
    share = teacher_share(cfg, iteration)
    specs = []
    for k, i in enumerate(picks):
        dr = "none" if rng.random() < cfg.no_dr_fraction else cfg.dr
        start = "default" if rng.random() < cfg.default_start_fraction else "clip"
        specs.append(EpisodeSpec(
            clip=names[i], clip_path=str(clips[names[i]]),
            seed=TRAIN_SEED_BASE + cfg.seed * 100_000 + iteration * 1_000 + k, dr=dr, teacher_share=share,
            student_onnx=student_onnx, start=start, mix_seed=int(rng.integers(2**31)), seconds=cfg.seconds,
            teacher_noise=cfg.teacher_noise))
    return specs


# -- data -----------------------------------------------------------------------------------------

class Aggregate:
    """Every iteration's (observation, label) pairs, split into training and held-out rows. The
    chunks are kept as they are (no concatenated copy of a multi-GB aggregate): batches gather
    rows from them through ``rows(holdout)``."""

    def __init__(self, max_samples: int):
        self.max_samples = max_samples
        self.chunks: list[dict[str, np.ndarray]] = []

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        self.chunks.append(chunk)
        total = self.size
        while total > self.max_samples and len(self.chunks) > 1:
            total -= len(self.chunks.pop(0)["labels"])

    @property
    def size(self) -> int:
        return sum(len(c["labels"]) for c in self.chunks)

    def rows(self, holdout: bool) -> tuple[np.ndarray, np.ndarray]:
        """(chunk index, row index) of every training (or held-out) row."""
        which = [np.flatnonzero(c["holdout"] == holdout) for c in self.chunks]
        chunk_of = np.concatenate([np.full(len(w), k, np.int64) for k, w in enumerate(which)] or [np.zeros(0, np.int64)])
        row_of = np.concatenate(which or [np.zeros(0, np.int64)])
        return chunk_of, row_of

    def gather(self, chunk_of: np.ndarray, row_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observations and labels of the given rows, grouped by chunk (same order in both)."""
        obs, lab = [], []
        for k in np.unique(chunk_of):
            r = row_of[chunk_of == k]
            obs.append(self.chunks[k]["observations"][r])
            lab.append(self.chunks[k]["labels"][r])
        if not obs:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(obs), np.concatenate(lab)


def chunk_from_results(results: list[dict], holdout_every: int) -> dict[str, np.ndarray]:
    obs, labels, holdout = [], [], []
    for k, r in enumerate(results):
        n = len(r["labels"])
        obs.append(r["observations"])
        labels.append(r["labels"])
        holdout.append(np.full(n, k % holdout_every == holdout_every - 1))
    return {"observations": np.concatenate(obs), "labels": np.concatenate(labels), "holdout": np.concatenate(holdout)}


def save_chunk(data_dir: Path, iteration: int, chunk: dict[str, np.ndarray], reports: list[dict]) -> None:
    """Arrays first, the reports file last (its presence marks the chunk complete)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stem = data_dir / f"iter_{iteration:03d}"
    for key, value in chunk.items():
        tmp = Path(f"{stem}_{key}.tmp.npy")
        np.save(tmp, value)
        os.replace(tmp, f"{stem}_{key}.npy")
    tmp = Path(f"{stem}_episodes.json.tmp")
    tmp.write_text(json.dumps(reports, indent=1) + "\n")
    os.replace(tmp, f"{stem}_episodes.json")


def load_chunk(data_dir: Path, iteration: int) -> tuple[dict[str, np.ndarray], list[dict]] | None:
    stem = data_dir / f"iter_{iteration:03d}"
    marker = Path(f"{stem}_episodes.json")
    if not marker.is_file():
        return None
    chunk = {k: np.load(f"{stem}_{k}.npy") for k in ("observations", "labels", "holdout")}
    return chunk, json.loads(marker.read_text())


# -- training -------------------------------------------------------------------------------------

def mse(net: student_model.StudentMLP, obs: np.ndarray, labels: np.ndarray) -> float | None:
    if len(labels) == 0:
        return None
    pred = student_model.predict(net, obs)
    return float(np.mean((pred - labels) ** 2))


def train_steps(net, optimizer, aggregate: Aggregate, samples: int, batch_size: int, lr: float,
                generator: torch.Generator) -> float:
    """``samples`` training rows in batches drawn uniformly with replacement from the aggregate;
    returns the mean MSE of the last 10 % of the batches."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    chunk_of, row_of = aggregate.rows(holdout=False)
    if len(row_of) == 0:
        raise ValueError("no training rows")
    chunks = [(torch.from_numpy(c["observations"]), torch.from_numpy(c["labels"])) for c in aggregate.chunks]
    chunk_of, row_of = torch.from_numpy(chunk_of), torch.from_numpy(row_of)
    steps = max(1, samples // batch_size)
    tail = []
    net.train()
    for step in range(steps):
        pick = torch.randint(0, len(row_of), (batch_size,), generator=generator)
        c, r = chunk_of[pick], row_of[pick]
        xs, ys = [], []
        for k in torch.unique(c).tolist():
            rows = r[c == k]
            xs.append(chunks[k][0][rows])
            ys.append(chunks[k][1][rows])
        x, y = torch.cat(xs), torch.cat(ys)
        loss = torch.mean((net(x) - y) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= steps - max(1, steps // 10):
            tail.append(loss.item())
    net.eval()
    return float(np.mean(tail))


# -- the run --------------------------------------------------------------------------------------

@dataclass
class RunState:
    iteration: int = 0  # iterations completed
    elapsed_s: float = 0.0
    history: list = field(default_factory=list)
    clip_stats: dict = field(default_factory=dict)
    initial_loss: float | None = None
    # one entry per invocation (command, commit, iterations, minutes): a resumed run's card names them all
    sessions: list = field(default_factory=list)


def _log(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


def _clip_stats(reports: list[dict]) -> dict[str, dict]:
    """Falls per clip over the episodes where the student acted on some ticks."""
    stats: dict[str, dict] = {}
    for r in reports:
        if r["student_ticks"] == 0:
            continue
        s = stats.setdefault(r["spec"]["clip"], {"episodes": 0, "falls": 0})
        s["episodes"] += 1
        s["falls"] += bool(r["fell"])
    return stats


def _save_checkpoint(out: Path, net, optimizer, state: RunState) -> None:
    tmp = out / (CHECKPOINT + ".tmp")
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "state": dataclasses.asdict(state)}, tmp)
    os.replace(tmp, out / CHECKPOINT)


def run(cfg: DistillConfig, out_dir: str | Path, *, resume: bool = False, export_path: str | Path | None = None,
        write_contract_hash: bool = True, model_card: bool = True, evaluate: bool = True,
        max_minutes: float | None = None, stream: TextIO | None = None, argv: list[str] | None = None,
        commit: str | None = None) -> dict:
    """Run (or resume) a distillation; returns the summary (also ``out_dir/summary.json``).

    ``max_minutes`` bounds the whole training, every session of a resumed run counted (the closing
    export and evaluation are not); ``argv`` and ``commit`` are recorded per session for the card."""
    from gmt_ros.core.contract import load_contract
    from sim2sim.worker_pool import Progress

    stream = stream if stream is not None else sys.stderr
    cfg.check()
    out = Path(out_dir)
    teacher_contract = load_contract(cfg.teacher)
    student_contract = load_contract(cfg.student)
    clips = training_clips(cfg.motions)
    export_path = Path(export_path) if export_path is not None else student_contract.onnx_path
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(f"max_minutes must be positive, got {max_minutes}")

    state = RunState()
    net = student_model.build(student_contract.obs_dim, student_contract.action_dim, cfg.hidden, cfg.seed)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if (out / CHECKPOINT).exists() or (out / CONFIG).exists():
        if not resume:
            raise FileExistsError(f"{out} already holds a distillation run; pass resume to continue it "
                                  "or choose another output directory")
        saved = json.loads((out / CONFIG).read_text())
        diff = [k for k, v in cfg.as_json().items() if k not in RESUMABLE_CHANGES and saved.get(k) != v]
        if diff:
            raise ValueError(f"{out} was started with another configuration (differs in {diff}); resume it with "
                             f"the same settings (only {', '.join(RESUMABLE_CHANGES)} may change) or choose "
                             "another output directory")
        (out / CONFIG).write_text(json.dumps(cfg.as_json(), indent=2) + "\n")
        if (out / CHECKPOINT).exists():
            ckpt = torch.load(out / CHECKPOINT, weights_only=False)
            net.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            state = RunState(**ckpt["state"])
        _log(stream, f"distill: resuming {out} after iteration {state.iteration} of {cfg.iterations} "
                     f"({state.elapsed_s / 60:.1f} min so far)")
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG).write_text(json.dumps(cfg.as_json(), indent=2) + "\n")

    data_dir = out / "data"
    aggregate = Aggregate(cfg.max_samples)
    for i in range(state.iteration):  # the data of completed iterations
        loaded = load_chunk(data_dir, i)
        if loaded is None:
            raise FileNotFoundError(f"{data_dir}: the data of iteration {i} are missing; cannot resume")
        aggregate.add(loaded[0])

    torch.set_num_threads(max(1, min(cfg.jobs, os.cpu_count() or 1)))
    session_start = time.monotonic()
    base_elapsed = state.elapsed_s
    stopped_early = None
    session = {"command": argv, "commit": commit, "started_utc": _now(), "from_iteration": state.iteration,
               "to_iteration": state.iteration, "minutes": 0.0}
    state.sessions.append(session)
    _log(stream, f"distill: teacher {teacher_contract.name} -> student {student_contract.name} "
                 f"({student_contract.obs_dim} inputs, {student_contract.action_dim} actions), "
                 f"{len(clips)} clips, DR {cfg.dr}, {cfg.iterations} iterations, seed {cfg.seed}, "
                 f"{cfg.jobs} worker(s) -> {out}")
    with RolloutPool(PolicyNames(cfg.teacher, cfg.student), jobs=cfg.jobs) as pool:
        while state.iteration < cfg.iterations:
            i = state.iteration
            if max_minutes is not None and state.history:
                last = state.history[-1]["wall_s"]["total"]
                if state.elapsed_s + 1.15 * last > max_minutes * 60:
                    stopped_early = (f"stopped after {i} of {cfg.iterations} iterations: another would pass "
                                     f"the {max_minutes:g}-minute budget")
                    _log(stream, f"distill: {stopped_early}")
                    break
            t0 = time.monotonic()
            share = teacher_share(cfg, i)
            loaded = load_chunk(data_dir, i)
            if loaded is None:
                # a new file per iteration: the workers load a student once per path
                rollout_onnx = out / f"rollout_student_{i:03d}.onnx"
                for old in out.glob("rollout_student_*.onnx"):
                    old.unlink()
                student_model.export_onnx(net, rollout_onnx, student_contract.input_name, student_contract.output_name)
                specs = plan_episodes(cfg, i, clips, state.clip_stats, str(rollout_onnx))
                _log(stream, f"iteration {i + 1}/{cfg.iterations}: teacher share {share:.3f}, "
                             f"{len(specs)} episodes")
                progress = Progress(len(specs), stream)
                results = pool.run(specs, on_done=lambda rep, bar=progress: bar.update(
                    {"clip": rep["spec"]["clip"], "seed": rep["spec"]["seed"], "fell": rep["fell"]}))
                reports = [r["report"] for r in results]
                chunk = chunk_from_results(results, cfg.holdout_every)
                del results
                save_chunk(data_dir, i, chunk, reports)
            else:
                chunk, reports = loaded
                _log(stream, f"iteration {i + 1}/{cfg.iterations}: rollouts already saved, {len(reports)} episodes")
            t1 = time.monotonic()
            aggregate.add(chunk)
            if i == 0 and state.initial_loss is None:
                net.set_normalizer(chunk["observations"][~chunk["holdout"]])
            new_val = chunk["holdout"]
            if state.initial_loss is None:
                state.initial_loss = mse(net, chunk["observations"][~new_val], chunk["labels"][~new_val])
            lr = cfg.lr * cfg.lr_decay ** i
            generator = torch.Generator().manual_seed(cfg.seed * 1000 + i)
            train_loss = train_steps(net, optimizer, aggregate, cfg.train_samples, cfg.batch_size, lr, generator)
            val_loss = mse(net, *aggregate.gather(*aggregate.rows(holdout=True)))
            new_val_loss = mse(net, chunk["observations"][new_val], chunk["labels"][new_val])
            t2 = time.monotonic()
            student_eps = [r for r in reports if r["student_ticks"] > 0]
            errors = [r["student_action_error"] for r in reports if r["student_action_error"] is not None]
            row = {
                "iteration": i + 1, "teacher_share": share, "episodes": len(reports),
                "samples": int(len(chunk["labels"])), "aggregate": aggregate.size,
                "falls": sum(bool(r["fell"]) for r in reports),
                "student_episodes": len(student_eps), "student_falls": sum(bool(r["fell"]) for r in student_eps),
                "student_action_error": float(np.mean(errors)) if errors else None,
                "lr": lr, "train_mse": train_loss, "val_mse": val_loss, "new_val_mse": new_val_loss,
                "wall_s": {"rollouts": round(t1 - t0, 1), "training": round(t2 - t1, 1), "total": round(t2 - t0, 1)},
            }
            if student_eps:
                state.clip_stats = _clip_stats(reports)
            state.history.append(row)
            state.iteration = i + 1
            state.elapsed_s = base_elapsed + (time.monotonic() - session_start)
            session.update(to_iteration=state.iteration, minutes=round((state.elapsed_s - base_elapsed) / 60, 1))
            _save_checkpoint(out, net, optimizer, state)
            _log(stream, f"iteration {i + 1}: {row['samples']} samples (aggregate {row['aggregate']}), "
                         f"{row['falls']}/{row['episodes']} episodes fell ({row['student_falls']}/"
                         f"{row['student_episodes']} with the student acting), train MSE {train_loss:.4f}, "
                         f"held-out MSE {_fmt(val_loss)} (this iteration's {_fmt(new_val_loss)}), "
                         f"{row['wall_s']['rollouts']:.0f} s rollouts + {row['wall_s']['training']:.0f} s training; "
                         f"{state.elapsed_s / 60:.1f} min in all")

    t_export = time.monotonic()
    export_path = student_model.export_onnx(net, export_path, student_contract.input_name, student_contract.output_name)
    check = onnx_matches_torch(net, export_path, aggregate)
    digest = file_sha256(export_path)
    if write_contract_hash and export_path.resolve() == student_contract.onnx_path.resolve():
        set_contract_hash(Path(student_contract.source), digest)
    state.elapsed_s = base_elapsed + (time.monotonic() - session_start)
    _log(stream, f"distill: exported {export_path} (sha256 {digest[:12]}…, {export_path.stat().st_size / 1e6:.1f} MB); "
                 f"ONNX vs torch max |diff| {check['max_abs_diff']:.2e} on {check['samples']} observations; "
                 f"{time.monotonic() - t_export:.0f} s")
    summary = {
        "config": cfg.as_json(), "teacher": teacher_contract.name, "student": student_contract.name,
        "clips": {name: str(p) for name, p in clips.items()}, "iterations_done": state.iteration,
        "stopped_early": stopped_early, "wall_s": round(state.elapsed_s, 1), "history": state.history,
        "initial_mse": state.initial_loss, "onnx": str(export_path), "onnx_sha256": digest,
        "onnx_check": check, "parameters": int(sum(p.numel() for p in net.parameters())),
        "command": argv, "commit": commit, "sessions": state.sessions, "finished_utc": _now(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
    }
    if evaluate and export_path.resolve() == student_contract.onnx_path.resolve():
        summary["evaluation"] = evaluate_no_dr(cfg, clips, out / "evaluation", stream)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if model_card:
        card = write_model_card(export_path.parent / "MODEL_CARD.md", summary, teacher_contract, student_contract)
        _log(stream, f"distill: wrote {card}")
    total = base_elapsed + (time.monotonic() - session_start)
    _log(stream, f"distill: done in {total / 60:.1f} min ({state.elapsed_s / 60:.1f} min to the export, the rest "
                 "the closing evaluation)")
    return summary


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def onnx_matches_torch(net, onnx_path: Path, aggregate: Aggregate, n: int = 2000) -> dict:
    """Max |ONNX - torch| over up to ``n`` recorded observations, through ``OnnxPolicy`` (the
    deployment's session, checked against the contract)."""
    import onnxruntime as ort

    obs = aggregate.chunks[-1]["observations"][:n] if aggregate.chunks else None
    if obs is None or len(obs) == 0:
        obs = np.random.default_rng(0).normal(size=(64, net.obs_dim)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = np.concatenate([session.run(None, {name: obs[i:i + 512]})[0] for i in range(0, len(obs), 512)])
    want = student_model.predict(net, obs)
    return {"samples": int(len(obs)), "max_abs_diff": float(np.max(np.abs(got - want)))}


_HASH_LINE = re.compile(r"^onnx_sha256:.*$", re.MULTILINE)


def set_contract_hash(contract_path: Path, digest: str) -> None:
    """Write ``onnx_sha256: <digest>`` into the contract YAML (replacing one, or after ``onnx:``)."""
    text = contract_path.read_text()
    line = f"onnx_sha256: {digest}"
    if _HASH_LINE.search(text):
        text = _HASH_LINE.sub(line, text, count=1)
    else:
        text, n = re.subn(r"^(onnx:.*)$", r"\1\n" + line, text, count=1, flags=re.MULTILINE)
        if n != 1:
            raise ValueError(f"{contract_path}: no 'onnx:' line to put the sha256 after")
    tmp = contract_path.with_name(contract_path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, contract_path)


def evaluate_no_dr(cfg: DistillConfig, clips: dict[str, Path], out_dir: Path, stream: TextIO) -> list[dict]:
    """The exported student on every training clip without randomisation (``run_episode``'s
    defaults: start in the clip's first frame, the bridge's send path and fall check)."""
    from sim2sim import batch

    specs = batch.plan_runs(clips, [0], "none")
    settings = batch.BatchSettings(policy=cfg.student, out_dir=str(out_dir))
    _log(stream, f"distill: evaluating the student on {len(specs)} clips without randomisation")
    rows = batch.run_batch(specs, settings, jobs=cfg.jobs, progress=batch.Progress(len(specs), stream).update)
    keys = ("clip", "fell", "duration_s", "e_mpjpe_rad", "e_mpkpe_mm", "e_vel_mps", "e_yaw_vel_radps",
            "min_pelvis_height_m")
    return [{k: r.get(k) for k in keys} for r in rows]


def reset_output(out_dir: str | Path) -> None:
    """Remove a previous run's directory (``gmt-ros distill --fresh``)."""
    out = Path(out_dir)
    if (out / CONFIG).exists() or (out / CHECKPOINT).exists():
        shutil.rmtree(out)
