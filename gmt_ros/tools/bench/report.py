"""The figures of a report: percentiles, the targets of issue 10 with their verdicts, the summary."""
from __future__ import annotations

import numpy as np

# The targets of issue 10 (headroom on the robot's computer), idle / one core loaded.
TARGET_TICK_P99_MS = {"idle": 1.5, "loaded": 3.0}        # policy tick in the graph
TARGET_BRIDGE_P99_MS = {"idle": 1.0, "loaded": 2.0}      # (a) lowstate arrival -> lowcmd write
TARGET_PROCESSING_P99_MS = {"idle": 2.0, "loaded": 4.0}  # (b) less the 50 Hz sample wait
TARGET_CPU_PERCENT = {"bridge": 15.0}                     # of one core
TARGET_RSS_MB = {"bridge": 150.0, "policy": 100.0}
TARGET_RTF = 6.0                                          # offline sim2sim with DR hard


def percentiles_ms(samples_s) -> dict:
    """p50 / p90 / p99 / max / mean in milliseconds of samples in seconds (NaN dropped)."""
    a = np.asarray(samples_s, dtype=np.float64).ravel()
    a = a[np.isfinite(a)] * 1e3
    if a.size == 0:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 4),
            "p90": round(float(np.percentile(a, 90)), 4), "p99": round(float(np.percentile(a, 99)), 4),
            "max": round(float(a.max()), 4), "mean": round(float(a.mean()), 4)}


def targets(report: dict) -> list[dict]:
    out = []

    def add(name, target, value, ok):
        out.append({"name": name, "target": target, "value": value, "met": None if value is None else ok})

    def at_most(name, limit, value, unit):
        add(name, f"<= {limit:g} {unit}", value, value is not None and value <= limit)

    graph = report.get("graph", {}).get("phases", {})  # absent when the graph could not run
    for phase, fig in graph.items():
        tick = TARGET_TICK_P99_MS.get(phase, TARGET_TICK_P99_MS["loaded"])
        at_most(f"policy tick p99 ({phase}, node)", tick, fig["policy_tick_ms"]["p99"], "ms")
        at_most(f"lowstate arrival -> lowcmd write p99 (a) bridge ({phase})",
                TARGET_BRIDGE_P99_MS.get(phase, TARGET_BRIDGE_P99_MS["loaded"]), fig["bridge_state_to_write_ms"]["p99"], "ms")
        at_most(f"(b) minus the 50 Hz sample wait p99 ({phase})",
                TARGET_PROCESSING_P99_MS.get(phase, TARGET_PROCESSING_P99_MS["loaded"]),
                fig["e2e_parts_ms"]["processing"]["p99"], "ms")
        for node, limit in TARGET_CPU_PERCENT.items():
            at_most(f"{node} CPU ({phase})", limit, fig["cpu_percent"].get(node), "% of a core")
        for node, limit in TARGET_RSS_MB.items():
            at_most(f"{node} RSS ({phase})", limit, fig["rss_mb"].get(node), "MB")
    for phase, fig in report.get("policy", {}).items():
        at_most(f"policy step p99 ({phase}, in-process)", TARGET_TICK_P99_MS.get(phase, TARGET_TICK_P99_MS["loaded"]),
                fig["step_ms"]["p99"], "ms")
    for phase, fig in report.get("rtf", {}).items():
        rtf = fig["real_time_factor"]
        add(f"sim2sim real-time factor, DR {fig['dr']} ({phase})", f">= {TARGET_RTF}x", rtf,
            rtf is not None and rtf >= TARGET_RTF)
    return out


def _fmt(p: dict) -> str:
    if not p or p.get("n", 0) == 0:
        return "n/a"
    return f"p50 {p['p50']:.3f}  p99 {p['p99']:.3f}  max {p['max']:.3f} ms (n={p['n']})"


def print_summary(report: dict) -> None:
    for phase, fig in report.get("policy", {}).items():
        print(f"[policy/{phase}] step        {_fmt(fig['step_ms'])}")
        for key in ("observation_ms", "onnx_ms", "command_ms", "checks_ms", "gmt_observation_ms"):
            print(f"[policy/{phase}]   {key[:-3]:<10}{_fmt(fig[key])}")
    for phase, fig in report.get("graph", {}).get("phases", {}).items():
        print(f"[graph/{phase}] policy tick  {_fmt(fig['policy_tick_ms'])}")
        print(f"[graph/{phase}]   step       {_fmt(fig['policy_step_ms'])}")
        print(f"[graph/{phase}] |period-20ms| {_fmt(fig['tick_period_deviation_ms'])}")
        print(f"[graph/{phase}] (a) state->write (bridge)   {_fmt(fig['bridge_state_to_write_ms'])}")
        print(f"[graph/{phase}] (b) state->write (e2e)      {_fmt(fig['e2e_state_to_write_ms'])}")
        for part, p in fig["e2e_parts_ms"].items():
            print(f"[graph/{phase}]     {part:<13}{_fmt(p)}")
        print(f"[graph/{phase}] RSS MB {fig['rss_mb']}  CPU % {fig['cpu_percent']}")
    for phase, fig in report.get("rtf", {}).items():
        print(f"[rtf/{phase}] {fig['motion']} DR {fig['dr']}: {fig['sim_s']} s simulated in {fig['wall_s']} s "
              f"= {fig['real_time_factor']}x real time{' (fell)' if fig['fell'] else ''}; model build "
              f"{fig['build_s']} s ({fig['real_time_factor_with_build']}x with it)")
    for t in report.get("targets", []):
        verdict = {True: "MET", False: "MISSED", None: "n/a"}[t["met"]]
        print(f"target {t['name']}: {t['value']} (target {t['target']}) {verdict}")
