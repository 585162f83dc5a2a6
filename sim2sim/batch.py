"""Evaluation at scale: clips × seeds under one domain-randomisation preset, in parallel.

``run_batch`` runs every (clip, seed) episode of ``sim2sim.evaluate.run_episode`` in a pool of
spawned worker processes (each loads the policy's ONNX once; onnxruntime runs single-threaded,
so ``jobs`` workers keep ``jobs`` cores busy), longest clips first so the pool drains evenly.
``summarize`` turns the run rows into per-clip and overall figures:

- fall rate with a Wilson score 95 % interval;
- E_mpkpe (mm), E_mpjpe (rad), E_vel (m/s), E_yaw_vel (rad/s): each run's errors are averaged over
  the ticks the robot was upright; runs are then weighted equally and summarised by their mean
  with a Student-t 95 % interval (mean ± t·s/√n). A run that fell on its first tick has no
  errors and is left out of the error statistics (its ``n`` says how many runs each rests on).
  Errors cannot be negative, so a lower bound below 0 is cut at 0 (coverage is kept).

``write_outputs`` writes runs.json, runs.csv, summary.json and summary.md; the summary is
computed from exactly the rows written to runs.json, so it can be recomputed from that file.
The seed of a run draws its randomisation (``DomainRandomization.draw(seed)``); without
randomisation (preset ``none``) every seed of a clip gives the identical run.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sim2sim import metrics
from sim2sim.worker_pool import Progress, WorkerPool  # noqa: F401  (Progress: batch.Progress for the tools)

ERROR_KEYS: tuple[str, ...] = ("e_mpkpe_mm", "e_mpjpe_rad", "e_vel_mps", "e_yaw_vel_radps")
ERROR_LABELS = {"e_mpkpe_mm": "E_mpkpe mm", "e_mpjpe_rad": "E_mpjpe rad", "e_vel_mps": "E_vel m/s",
                "e_yaw_vel_radps": "E_yaw_vel rad/s"}
CONFIDENCE = 0.95
# Columns of runs.csv before the flattened randomisation; rows carry these keys (plus more).
CSV_COLUMNS: tuple[str, ...] = (
    "clip", "seed", "dr_preset", "policy", "fell", "fall_time_s", "duration_s", "requested_s",
    "min_pelvis_height_m", "max_tilt_rad", "policy_ticks", *ERROR_KEYS, "wall_s",
)


@dataclass(frozen=True)
class RunSpec:
    """One episode to run: which clip (``clip`` is its report name), seed, randomisation."""

    clip: str
    clip_path: str
    seed: int
    dr: str
    seconds: float | None = None
    start: str = "clip"
    plots: bool = False  # write the per-run PNGs (needs the trace)
    save_trace: bool = False  # write the per-tick trace as .npz

    @property
    def run_name(self) -> str:
        """File-system name of the run: clip with '/' → '__', then the seed."""
        return f"{self.clip.replace('/', '__')}_seed{self.seed}"


@dataclass(frozen=True)
class BatchSettings:
    """What every worker needs besides the run itself."""

    policy: str
    out_dir: str
    plot_joints: tuple[str, ...] = ()
    send_path: str = "bridge"  # sim2sim.evaluate.SEND_PATHS


# -- finding clips ------------------------------------------------------------------------------------

def find_clips(items: Sequence[str]) -> dict[str, Path]:
    """Clips named by ``items``, as {report name: file}. Each item is one of:

    - a directory: every .npz/.pkl below it (a clip inside the shipped library keeps its library
      name, e.g. "gmt/walk_stand"; elsewhere its path below the directory);
    - a group of the library: "gmt", "twist2" (every clip named "gmt/...");
    - a clip: a file path, a library name ("gmt/walk_stand") or a unique bare name ("walk_stand").

    Empty ``items`` means the whole shipped library. Raises ValueError / FileNotFoundError naming
    the item that found nothing, or two different files that would get the same name.
    """
    from gmt_ros.core import paths
    from gmt_ros.core.clip_library import CLIP_SUFFIXES, list_clips, resolve_clip

    library = list_clips()
    library_root = paths.motions_dir().resolve()
    by_path = {p.resolve(): name for name, p in library.items()}

    def report_name(path: Path, base: Path | None) -> str:
        resolved = path.resolve()
        if resolved in by_path:
            return by_path[resolved]
        if base is not None:
            return path.relative_to(base).with_suffix("").as_posix()
        return path.stem

    found: dict[str, Path] = {}

    def add(name: str, path: Path) -> None:
        if name in found and found[name].resolve() != path.resolve():
            raise ValueError(f"two motion clips would both be reported as {name!r}: {found[name]} and {path}")
        found[name] = path

    if not items:
        for name, path in library.items():
            add(name, path)
    for item in items:
        text = str(item)
        candidate = Path(text)
        if candidate.is_dir():
            files = sorted(p for p in candidate.rglob("*") if p.is_file() and p.suffix.lower() in CLIP_SUFFIXES
                           and not p.name.startswith("."))
            if not files:
                raise ValueError(f"no motion clips (.npz, .pkl) found in directory {candidate}")
            for path in files:
                add(report_name(path, candidate), path)
            continue
        group = [n for n in library if n.startswith(text.rstrip("/") + "/")]
        if group and not candidate.is_file():
            for name in group:
                add(name, library[name])
            continue
        if not candidate.exists() and (candidate.is_absolute() or text.startswith(("./", "../"))):
            raise FileNotFoundError(f"motion path {text} does not exist (neither a directory nor a clip file)")
        path = resolve_clip(text)  # ValueError / FileNotFoundError naming the item
        add(report_name(path, None), path)
    if not found:
        raise ValueError(f"no motion clips found (library {library_root} is empty)")
    return dict(sorted(found.items()))


def plan_runs(clips: dict[str, Path], seeds: Iterable[int], dr: str, *, seconds: float | None = None,
              start: str = "clip", plots: str = "none", save_traces: bool = False) -> list[RunSpec]:
    """Every clip × seed, clip-major. ``plots``: "none", "first" (the first seed of each clip) or "all"."""
    if plots not in ("none", "first", "all"):
        raise ValueError(f"plots must be 'none', 'first' or 'all', got {plots!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("at least one seed is needed")
    specs = []
    for name, path in clips.items():
        for i, seed in enumerate(seeds):
            plot = plots == "all" or (plots == "first" and i == 0)
            specs.append(RunSpec(clip=name, clip_path=str(path), seed=int(seed), dr=str(dr), seconds=seconds,
                                 start=start, plots=plot, save_trace=save_traces))
    return specs


# -- the worker side ----------------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(settings: BatchSettings) -> None:
    """Once per worker process: the contract and the ONNX session, reused by every run."""
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.policy import TrackingPolicy

    contract = load_contract(settings.policy)
    _WORKER.clear()
    _WORKER.update(settings=settings, contract=contract, policy=TrackingPolicy(contract), clips={})


def _run_one(spec: RunSpec) -> dict:
    """One episode in this worker; returns its row (see ``row_from_result``)."""
    from gmt_ros.core.motion import load_clip
    from sim2sim.evaluate import SEND_PATHS, run_episode

    settings: BatchSettings = _WORKER["settings"]
    clips = _WORKER["clips"]
    if spec.clip_path not in clips:
        clips[spec.clip_path] = load_clip(spec.clip_path)
    clip = clips[spec.clip_path]
    need_trace = spec.plots or spec.save_trace
    started = time.perf_counter()
    limits, fall_check = SEND_PATHS[settings.send_path]
    result = run_episode(_WORKER["contract"], clip, seconds=spec.seconds, seed=spec.seed, start=spec.start,
                         policy=_WORKER["policy"], dr=spec.dr, trace=need_trace, command_limits=limits,
                         fall_check=fall_check)
    wall = time.perf_counter() - started
    row = row_from_result(result, spec, wall)
    row["worker_pid"] = os.getpid()
    out = Path(settings.out_dir)
    if spec.save_trace:
        trace_path = result.trace.save_npz(out / "traces" / f"{spec.run_name}.npz")
        row["trace"] = str(trace_path.relative_to(out))
    if spec.plots:
        from sim2sim import plots

        title = f"{spec.clip} | {result.policy} | DR {spec.dr} seed {spec.seed}"
        written = plots.plot_run(result.trace, out / "plots" / spec.run_name, joints=settings.plot_joints or None,
                                 title=title)
        row["plots"] = [str(p.relative_to(out)) for p in written]
    return row


def row_from_result(result, spec: RunSpec, wall_s: float) -> dict:
    """The runs.json row of one episode: its report plus where it came from and how long it took."""
    report = result.as_dict()
    row = {"clip": spec.clip, "seed": spec.seed, "dr_preset": spec.dr}
    row.update({k: v for k, v in report.items() if k not in ("clip", "seed", "randomization")})
    row["clip_name"] = report["clip"]
    row["wall_s"] = round(wall_s, 3)
    row["randomization"] = report.get("randomization")
    return row


# -- running ------------------------------------------------------------------------------------------

def run_batch(specs: Sequence[RunSpec], settings: BatchSettings, jobs: int = 2,
              progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every spec; rows come back in the order of ``specs``.

    ``jobs`` worker processes (spawned, so no state leaks from the caller); ``jobs=1`` runs in this
    process. A run that raises stops the batch with a RuntimeError naming it.
    """
    if isinstance(jobs, bool) or int(jobs) != jobs or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs}")
    if not specs:
        raise ValueError("nothing to run: no (clip, seed) pairs")
    Path(settings.out_dir).mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(specs)), key=lambda i: -_clip_length(specs[i]))  # longest first
    with WorkerPool(min(int(jobs), len(specs)), _init_worker, (settings,)) as pool:
        return pool.run(_guarded, specs, order, on_done=None if progress is None else lambda i, row: progress(row))


def _guarded(spec: RunSpec) -> dict:
    try:
        return _run_one(spec)
    except Exception as exc:
        raise RuntimeError(f"run {spec.clip} seed {spec.seed} (DR {spec.dr}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc


_LENGTHS: dict[str, float] = {}


def check_clips(clips: dict[str, Path]) -> dict[str, float]:
    """Load every clip once (a malformed file is a ValueError naming it, before any worker starts);
    returns their durations (s) by name."""
    from gmt_ros.core.motion import load_clip

    durations = {}
    for name, path in clips.items():
        key = str(path)
        if key not in _LENGTHS:
            try:
                _LENGTHS[key] = load_clip(path).duration
            except (ValueError, FileNotFoundError, OSError) as exc:
                text = str(exc)
                raise ValueError(text if str(path) in text else f"motion clip {path}: {text}") from None
        durations[name] = _LENGTHS[key]
    return durations


def _clip_length(spec: RunSpec) -> float:
    if spec.seconds is not None:
        return spec.seconds
    if spec.clip_path not in _LENGTHS:
        check_clips({spec.clip: Path(spec.clip_path)})
    return _LENGTHS[spec.clip_path]


# -- summarising --------------------------------------------------------------------------------------

def summarize_rows(rows: Sequence[dict], confidence: float = CONFIDENCE) -> dict:
    """Fall rate (Wilson) and the four errors (Student-t) over ``rows``, plus run counts."""
    n = len(rows)
    if n == 0:
        raise ValueError("cannot summarise zero runs")
    falls = sum(bool(r["fell"]) for r in rows)
    out = {
        "runs": n,
        "falls": falls,
        "fall_rate": metrics.wilson_interval(falls, n).as_dict(),
        "upright_s": round(sum(float(r["duration_s"]) for r in rows), 3),
    }
    for key in ERROR_KEYS:
        out[key] = metrics.mean_confidence_interval([r.get(key) for r in rows], confidence, lower_bound=0.0).as_dict()
    return out


def _group(rows: Sequence[dict], key: str) -> dict:
    groups: dict = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return dict(sorted(groups.items()))


def clustered_by_seed(rows: Sequence[dict], confidence: float = CONFIDENCE) -> dict | None:
    """Overall figures with each seed as one sample: a seed is one randomisation draw shared by
    every clip, so runs of one seed are not independent. Fall rate and errors are the mean of the
    seeds' means (each over that seed's runs) with a Student-t interval over the seeds, cut to the
    possible range. None with fewer than two seeds."""
    by_seed = _group(rows, "seed")
    if len(by_seed) < 2:
        return None
    out = {"seeds": len(by_seed), "fall_rate": metrics.mean_confidence_interval(
        [sum(bool(r["fell"]) for r in g) / len(g) for g in by_seed.values()], confidence,
        lower_bound=0.0, upper_bound=1.0).as_dict()}
    for key in ERROR_KEYS:
        seed_means = []
        for group in by_seed.values():
            values = [r[key] for r in group if r.get(key) is not None]
            if values:
                seed_means.append(sum(values) / len(values))
        out[key] = metrics.mean_confidence_interval(seed_means, confidence, lower_bound=0.0).as_dict()
    return out


def summarize(rows: Sequence[dict], confidence: float = CONFIDENCE) -> dict:
    """Per clip (sorted by name), per seed, and overall (every run weighted equally; plus the
    overall figures clustered by seed, see :func:`clustered_by_seed`)."""
    overall = summarize_rows(rows, confidence)
    overall["clustered_by_seed"] = clustered_by_seed(rows, confidence)
    return {
        "confidence": confidence,
        "method": {
            "fall_rate": "falls / runs with a Wilson score interval",
            "errors": "each run's errors averaged over the ticks it was upright; mean over runs with a "
                      "Student-t interval (mean ± t·s/√n, cut at 0); runs without an upright tick left out",
            "overall": "all runs weighted equally",
            "clustered_by_seed": "a seed is one randomisation draw shared by every clip: the mean of the "
                                 "seeds' means with a Student-t interval over the seeds",
        },
        "overall": overall,
        "clips": {clip: summarize_rows(group, confidence) for clip, group in _group(rows, "clip").items()},
        "seeds": {str(seed): summarize_rows(group, confidence) for seed, group in _group(rows, "seed").items()},
    }


def _fmt_interval(iv: dict, digits: int, scale: float = 1.0) -> str:
    if iv["value"] is None:
        return "–"
    text = f"{iv['value'] * scale:.{digits}f}"
    if iv["low"] is not None and iv["high"] is not None:
        text += f" [{iv['low'] * scale:.{digits}f}, {iv['high'] * scale:.{digits}f}]"
    return text


def summary_markdown(summary: dict, meta: dict | None = None) -> str:
    """The summary as a markdown table (one row per clip, then the overall row)."""
    pct = round(summary["confidence"] * 100)
    lines = []
    if meta:
        lines.append(f"# Evaluation: policy `{meta.get('policy')}`, DR preset `{meta.get('dr')}`, "
                     f"{meta.get('seeds_count')} seeds\n")
    digits = {"e_mpkpe_mm": 1, "e_mpjpe_rad": 3, "e_vel_mps": 3, "e_yaw_vel_radps": 3}
    head = ["clip", "runs", "falls", f"fall rate % [{pct} % CI]"] + [f"{ERROR_LABELS[k]} [{pct} % CI]"
                                                                       for k in ERROR_KEYS]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))

    def row(name: str, s: dict) -> str:
        cells = [name, str(s["runs"]), str(s["falls"]), _fmt_interval(s["fall_rate"], 0, 100.0)]
        cells += [_fmt_interval(s[k], digits[k]) for k in ERROR_KEYS]
        return "| " + " | ".join(cells) + " |"

    for clip, s in summary["clips"].items():
        lines.append(row(clip, s))
    lines.append(row("**all**", summary["overall"]))
    clustered = summary["overall"].get("clustered_by_seed")
    if clustered:
        cells = ["**all, clustered by seed**", f"{clustered['seeds']} draws", "",
                 _fmt_interval(clustered["fall_rate"], 0, 100.0)] + [_fmt_interval(clustered[k], digits[k])
                                                                    for k in ERROR_KEYS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Fall rate: {summary['method']['fall_rate']}. Errors: {summary['method']['errors']}. "
                 f"Overall: {summary['method']['overall']}. Clustered by seed: "
                 f"{summary['method']['clustered_by_seed']}. Intervals are {pct} %.")
    if meta:
        lines.append(f"Wall time {meta.get('wall_s')} s with {meta.get('jobs')} worker(s); "
                     f"simulated {summary['overall']['upright_s']} s upright.")
    if len(summary.get("seeds", {})) > 1:
        lines += ["", "Per seed (one randomisation draw, every clip):", ""]
        lines.append("| " + " | ".join(["seed"] + head[1:]) + " |")
        lines.append("|" + "---|" * len(head))
        for seed, s in summary["seeds"].items():
            lines.append(row(seed, s))
    return "\n".join(lines) + "\n"


# -- files --------------------------------------------------------------------------------------------

def _scalar_draws(randomization: dict | None) -> dict:
    """The scalar DR values as dr_<name> columns (vectors stay in the JSON column)."""
    if not randomization:
        return {}
    return {f"dr_{k}": v for k, v in randomization.items()
            if k not in ("preset", "seed") and (v is None or isinstance(v, (int, float)))}


def runs_csv(rows: Sequence[dict]) -> str:
    """runs.csv: CSV_COLUMNS, the scalar DR draws (dr_*), then every draw as JSON (dr_json)."""
    dr_columns: list[str] = []
    for row in rows:
        for key in _scalar_draws(row.get("randomization")):
            if key not in dr_columns:
                dr_columns.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*CSV_COLUMNS, *dr_columns, "dr_json"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = {k: row.get(k) for k in CSV_COLUMNS}
        record.update(_scalar_draws(row.get("randomization")))
        record["dr_json"] = json.dumps(row.get("randomization"), separators=(",", ":"))
        writer.writerow({k: ("" if v is None else v) for k, v in record.items()})
    return buf.getvalue()


def write_outputs(out_dir: str | Path, rows: Sequence[dict], meta: dict) -> dict:
    """runs.json, runs.csv, summary.json (summary + meta) and summary.md; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    (out / "runs.json").write_text(json.dumps(list(rows), indent=1) + "\n")
    (out / "runs.csv").write_text(runs_csv(rows))
    (out / "summary.json").write_text(json.dumps({"meta": meta, **summary}, indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(summary, meta))
    return summary

