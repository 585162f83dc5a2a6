#!/usr/bin/env python3
"""Time one policy step (observation + ONNX + command) of the shipped TWIST2 student, and the GMT
observation builder alone (no GMT weights exist), on a synthetic walking reference.

    .venv/bin/python scripts/bench_policy_step.py [--steps 3000] [--loaded]

A quick look at the in-process part of ``gmt-ros bench`` (same code: gmt_ros.tools.bench), which
also measures the node graph and writes the README's figures. Prints p50 / p99 / max in
milliseconds. The policy runs at 50 Hz, so a step has 20 ms.
"""
from __future__ import annotations

import argparse
import contextlib

from gmt_ros.tools.bench import busy_load, measure_policy_step

LABELS = {
    "step_ms": "twist2_student step (checks+obs+ONNX+cmd)",
    "observation_ms": "  observation build",
    "onnx_ms": "  ONNX run (1 thread, CPU)",
    "command_ms": "  action -> command",
    "checks_ms": "  input checks (state, window, obs NaN)",
    "gmt_observation_ms": "gmt_student observation build (2154)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--loaded", action="store_true", help="with a busy loop pinned to the last CPU")
    args = parser.parse_args()
    with busy_load() if args.loaded else contextlib.nullcontext():
        result = measure_policy_step(args.steps)
    for key, label in LABELS.items():
        p = result[key]
        print(f"{label:<44} p50 {p['p50']:6.3f} ms   p99 {p['p99']:6.3f} ms   max {p['max']:6.3f} ms   (n={p['n']})")


if __name__ == "__main__":
    main()
