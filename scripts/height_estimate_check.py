"""The fall check's pelvis height estimate on the simulated robot's true state, against its true
pelvis height, over kept sim traces (``gmt-ros sim2sim --keep-logs DIR`` writes DIR/sim_trace.npz):

    python scripts/height_estimate_check.py DIR/sim_trace.npz [...]

Per trace, over the rows commanded by the policy: the lowest estimate and the true height there,
the lowest true height, and the estimate's error range. An estimate that is right here but low in
the bridge points at the state the bridge received, not at the kinematics.
"""
from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np

from gmt_ros.core.height_estimate import PelvisHeightEstimator
from sim2sim.trace import PD, SimTrace


def check(path: str) -> str:
    trace = SimTrace.load(path)
    estimate = PelvisHeightEstimator()
    under_policy = np.flatnonzero(trace.command_kind == PD)
    if under_policy.size == 0:
        return f"{path}: no row under the policy"
    h = np.array([estimate(SimpleNamespace(imu_quat=trace.root_quat[r], joint_pos=trace.joint_pos[r]))
                  for r in under_policy])
    z = trace.root_pos[under_policy, 2]
    i = int(np.argmin(h))
    error = h - z
    return (f"{path}: {under_policy.size} rows under the policy | estimate min {h[i]:.3f} m (true {z[i]:.3f} m there)"
            f" | true min {z.min():.3f} m | estimate - true {error.min():+.3f} .. {error.max():+.3f} m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", nargs="+", help="sim_trace.npz files")
    for path in parser.parse_args().traces:
        print(check(path))


if __name__ == "__main__":
    main()
