"""Before/after table of `gmt-ros bench --json` reports (issue 10's targets), as in the README.

    python scripts/bench_table.py --before docs/bench/before_*.json --after docs/bench/after_*.json

Each cell is the median of the runs given, with their range in brackets: the machine is noisy, so
one run is not a figure. The commits are read from the reports.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

# (row label, target, getter(report, phase)) — phase is "idle" or "loaded"
ROWS = [
    ("bridge CPU, % of a core", "≤ 15 / 15", lambda r, p: r["graph"]["phases"][p]["cpu_percent"]["bridge"]),
    ("bridge RSS, MB", "≤ 150 / 150", lambda r, p: r["graph"]["phases"][p]["rss_mb"]["bridge"]),
    ("policy node RSS, MB", "≤ 100 / 100", lambda r, p: r["graph"]["phases"][p]["rss_mb"]["policy"]),
    ("sim RSS, MB", "—", lambda r, p: r["graph"]["phases"][p]["rss_mb"]["sim"]),
    ("policy tick in the graph p99, ms", "≤ 1.5 / 3", lambda r, p: r["graph"]["phases"][p]["policy_tick_ms"]["p99"]),
    ("lowstate → lowcmd in the bridge p99, ms", "≤ 1 / 2",
     lambda r, p: r["graph"]["phases"][p]["bridge_state_to_write_ms"]["p99"]),
    ("state → answer less the sample wait p99, ms", "≤ 2 / 4",
     lambda r, p: r["graph"]["phases"][p]["e2e_parts_ms"]["processing"]["p99"]),
    ("policy step in-process p99, ms", "—", lambda r, p: r["policy"][p]["step_ms"]["p99"]),
    ("offline sim2sim DR hard, × real time", "≥ 6 / 6", lambda r, p: r["rtf"][p]["real_time_factor"]),
]


def cell(reports, getter, phase) -> str:
    values = []
    for r in reports:
        try:
            values.append(float(getter(r, phase)))
        except (KeyError, TypeError):
            pass
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.3g}"
    return f"{med:.3g} [{min(values):.3g}–{max(values):.3g}]"


def table(before: list[dict], after: list[dict]) -> str:
    def commits(rs):
        return ", ".join(sorted({r["git"]["commit"][:7] for r in rs}))

    lines = [f"| figure (idle / one core loaded) | target | before ({commits(before)}, {len(before)} runs) idle | loaded "
             f"| after ({commits(after)}, {len(after)} runs) idle | loaded |",
             "|---|---|---|---|---|---|"]
    for label, target, getter in ROWS:
        lines.append(f"| {label} | {target} | {cell(before, getter, 'idle')} | {cell(before, getter, 'loaded')} "
                     f"| {cell(after, getter, 'idle')} | {cell(after, getter, 'loaded')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", nargs="+", type=Path, required=True)
    p.add_argument("--after", nargs="+", type=Path, required=True)
    args = p.parse_args(argv)
    load = lambda paths: [json.loads(path.read_text()) for path in paths]  # noqa: E731
    print(table(load(args.before), load(args.after)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
