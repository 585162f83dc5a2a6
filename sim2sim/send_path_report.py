"""Compare send paths on the same clips and seeds: ``python -m sim2sim.send_path_report DIR ...``.

Reads the ``runs.json`` of ``gmt-ros evaluate`` output directories (any number, e.g. one per send
path and seed range: a DR batch split so that no run holds the machine too long), groups the runs
by their send path (``command_limits`` of each run: bridge, range, raw), checks that every path
ran the same (clip, seed) pairs under the same randomisation preset, and prints one markdown table:
runs, falls, fall rate (Wilson 95 %), fall rate clustered by seed (Student-t over the draws), how
the falls ended (the supervisor's fall check, an unsafe command, the evaluation's own criterion),
the errors, and, against the first path given with ``--baseline`` (default ``raw``), the paired
comparison: runs that fell on one path only, with the exact two-sided sign (McNemar) test on them.
Equal "within noise" means that test finds no difference (p > 0.05).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from sim2sim import batch

_ORDER = ("raw", "bridge", "range")


def load_runs(dirs: list[Path]) -> dict[str, dict[tuple[str, int], dict]]:
    """{send path: {(clip, seed): row}}; a (clip, seed) seen twice on one path is an error."""
    paths: dict[str, dict[tuple[str, int], dict]] = {}
    presets = set()
    for d in dirs:
        runs_file = Path(d) / "runs.json"
        if not runs_file.is_file():
            raise ValueError(f"{d}: no runs.json (not a gmt-ros evaluate output directory)")
        for row in json.loads(runs_file.read_text()):
            path = row.get("command_limits", "bridge")
            key = (row["clip"], int(row["seed"]))
            runs = paths.setdefault(path, {})
            if key in runs:
                raise ValueError(f"{d}: {key[0]} seed {key[1]} on send path {path} is in two directories")
            runs[key] = row
            presets.add(row.get("dr_preset"))
    if len(presets) > 1:
        raise ValueError(f"the runs mix randomisation presets {sorted(map(str, presets))}")
    keys = {p: set(r) for p, r in paths.items()}
    first = next(iter(keys.values()), set())
    for p, k in keys.items():
        if k != first:
            raise ValueError(f"send path {p} ran {len(k)} (clip, seed) pairs, not the same as the others "
                             f"({len(first)}): e.g. {sorted(k ^ first)[:3]}")
    return paths


def sign_test(only_a: int, only_b: int) -> float:
    """Exact two-sided p-value of the sign (McNemar) test on the discordant pairs."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2.0 * tail)


def _ended_by(row: dict) -> str:
    if not row["fell"]:
        return ""
    if row.get("command_fault"):
        return "command"
    if row.get("fall_detected"):
        return "check"
    return "criterion"


def compare(paths: dict[str, dict], baseline: str = "raw") -> list[dict]:
    """One summary per send path (baseline first), with the paired comparison to the baseline."""
    if baseline not in paths:
        raise ValueError(f"no runs on the baseline send path {baseline!r} (have {sorted(paths)})")
    order = [baseline] + [p for p in _ORDER if p in paths and p != baseline] + sorted(set(paths) - set(_ORDER) - {baseline})
    base = paths[baseline]
    out = []
    for name in order:
        runs = paths[name]
        rows = list(runs.values())
        summary = batch.summarize_rows(rows)
        clustered = batch.clustered_by_seed(rows)
        ended = [_ended_by(r) for r in rows]
        only_here = sum(runs[k]["fell"] and not base[k]["fell"] for k in runs)
        only_base = sum(base[k]["fell"] and not runs[k]["fell"] for k in runs)
        out.append({
            "send_path": name, "runs": summary["runs"], "falls": summary["falls"],
            "fall_rate": summary["fall_rate"],
            "fall_rate_by_seed": clustered["fall_rate"] if clustered else None,
            "ended_by": {k: ended.count(k) for k in ("check", "command", "criterion")},
            "errors": {k: summary[k] for k in batch.ERROR_KEYS},
            "only_this_fell": only_here, "only_baseline_fell": only_base,
            "p_same": sign_test(only_here, only_base),
            "clipped": {k: sum(int(r.get("clipped", {}).get(k, 0)) for r in rows)
                        for k in ("joint_limit", "velocity_limit", "torque_limit")},
        })
    return out


def _pct(iv: dict | None) -> str:
    if not iv or iv["value"] is None:
        return "–"
    return f"{100 * iv['value']:.0f} [{100 * iv['low']:.0f}, {100 * iv['high']:.0f}]"


def markdown(results: list[dict], preset: str, baseline: str) -> str:
    head = ("| send path | runs | falls | fall rate % [95 % CI] | clustered by seed % | ended by check / command / "
            f"criterion | fell only here / only with {baseline} | sign test p | E_mpkpe mm | E_vel m/s | "
            "clipped slot-ticks j / v / t |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in results:
        e = r["errors"]
        paired = "–" if r["send_path"] == baseline else f"{r['only_this_fell']} / {r['only_baseline_fell']}"
        p = "–" if r["send_path"] == baseline else f"{r['p_same']:.2f}"
        c = r["clipped"]
        lines.append(
            f"| {r['send_path']} | {r['runs']} | {r['falls']} | {_pct(r['fall_rate'])} | {_pct(r['fall_rate_by_seed'])} | "
            f"{r['ended_by']['check']} / {r['ended_by']['command']} / {r['ended_by']['criterion']} | {paired} | {p} | "
            f"{e['e_mpkpe_mm']['value']:.1f} | {e['e_vel_mps']['value']:.3f} | "
            f"{c['joint_limit']} / {c['velocity_limit']} / {c['torque_limit']} |")
    return head + "\n".join(lines) + f"\n\nDR preset `{preset}`; the same (clip, seed) pairs on every path.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim2sim.send_path_report", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="gmt-ros evaluate --out directories")
    parser.add_argument("--baseline", default="raw", help="send path the others are compared with (default raw)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON")
    args = parser.parse_args(argv)
    try:
        paths = load_runs(args.dirs)
        results = compare(paths, args.baseline)
    except ValueError as exc:
        print(f"send_path_report: error: {exc}", file=sys.stderr)
        return 2
    preset = next(iter(next(iter(paths.values())).values())).get("dr_preset")
    text = markdown(results, preset, args.baseline)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
