"""`gmt-ros bench`: the performance figures of the README table, measured in one run.

    gmt-ros bench [--json OUT] [--sections policy,graph,rtf] [--steps 3000] [--graph-seconds 30]
                  [--rtf-seconds 20] [--rtf-motion NAME] [--dr hard] [--no-load] [--no-load-pin]
                  [--launch-settings] [--node-param NODE.NAME=VALUE ...] [--nice N]
                  [--keep-logs DIR]

Every section is measured twice: *idle* (nothing but the measurement; other users of the machine
are not stopped, hence the load average in the report) and *loaded*: one busy-loop process
(``while True: pass``) pinned to the last CPU (``--no-load-pin``: not pinned), stopped right after.

``policy`` - one ``TrackingPolicy.step`` of the shipped TWIST2 student in this process (no ROS):
    observation build, ONNX run, action -> command, each timed inside the same step; a synthetic
    walking reference (a new window object every step, so its checks run every step, as with the
    launch file's 50 Hz windows) and noisy standing states. Also the GMT observation builder alone (2154
    values, 20 reference frames; no GMT weights exist).

``graph`` - the sim2sim node graph as separate processes (``gmt_ros.tools.sim2sim_run``: sim,
    bridge, policy, motion player; supervisor walked to ``policy`` mode, robot standing on the
    player's idle windows), with ``gmt-ros sim2sim``'s node settings: its lighter ones by default
    (motion windows shorter and at 25 Hz, /joint_states at 250 Hz; at the launch file's settings
    the graph needs more than this machine's 2 cores), ``--launch-settings`` for the launch file's,
    ``--node-param`` for experiments. The sim, bridge and policy processes are the shipped nodes
    with a thin recording layer (``probe`` below: a timestamp per callback, no other change), so
    every figure is taken where it happens, on CLOCK_MONOTONIC, which all processes share:

    - policy tick: the whole 50 Hz timer callback (state assembly and checks, observation, ONNX,
      command, /gmt/joint_targets and timing publish); the ``step`` part alone too.
    - tick period deviation: |period - 20 ms| between consecutive tick starts.
    - (a) bridge-internal: a lowstate's arrival in the bridge (its SDK callback, after the SDK's
      CDR decoding) -> the next rt/lowcmd write (end of ``Write``). The writer runs on its own
      fixed 500 Hz schedule and re-sends the latest target, so (a) is the wait for the next writer
      tick (0-2 ms by design) plus its work.
    - (b) end to end: a lowstate's publication by the sim (its ``Write`` call) -> the first
      rt/lowcmd written by the bridge whose target the policy computed from that lowstate. Only
      states a tick actually used count (one in ten at 500/50 Hz). The chain is exact: the policy
      records the header stamp of the /joint_states it used and the stamp of the target it
      published; the bridge republishes each lowstate on /joint_states within the lowstate's own
      callback, and records which target each write carried. Its parts: ``transport_in`` (sim
      publish -> policy has the /joint_states: SDK, bridge, ROS), ``sample_wait`` (-> the next
      tick starts: 0-20 ms by design, the 50 Hz policy sampling a 500 Hz stream), ``pipeline``
      (tick start -> the write carrying its target: compute, publish, ROS, bridge, writer wait),
      and ``processing`` = end to end minus the sample wait (what the software adds).
    - RSS (VmRSS) and CPU share of every node process; the sim's own report (real-time factor,
      overruns, its command latency).

``rtf`` - ``sim2sim.evaluate.run_episode`` (the headless in-process loop of ``gmt-ros eval``)
    with domain randomisation ``--dr`` (default ``hard``: every effect) on ``--rtf-motion`` for
    ``--rtf-seconds`` of sim time: simulated seconds / wall seconds.

The report (``--json``) holds the git commit measured (``git rev-parse HEAD``, plus whether the
working tree differs from it), the machine (CPUs, load average at start and end, versions), the
settings, every figure, and each target with its verdict. Targets (issue 10, idle / loaded): policy
tick in the graph p99 <= 1.5 / 3 ms, lowstate -> lowcmd (a) p99 <= 1 / 2 ms, (b) less the sample
wait p99 <= 2 / 4 ms, bridge <= 15 % of a core and <= 150 MB RSS, policy node <= 100 MB, offline
sim2sim with DR hard >= 6x real time.

``python -m gmt_ros.tools.bench probe {sim,bridge,policy} RECORD_FILE NODE_ARGS...`` is the
recording layer: it runs that node's own ``main()`` with a recorder on the node's explicit
measurement hooks (``BridgeHooks``, ``PolicyHooks``, the sim's ``on_state_write``) and writes the
records (.npz) when the node exits. The graph section starts the nodes through wrapper
scripts that call it.

The parts: ``command`` (the command line and the run of the sections), ``environment`` (the commit,
the machine, the busy-loop load, RSS), ``policy_step``, ``rtf``, ``graph_run`` (the graph section's
processes and phases), ``probes`` (the recording layer), ``graph_latency`` (records -> latencies),
``report`` (percentiles, the targets and their verdicts, the summary).
"""
from gmt_ros.tools.bench.command import SECTIONS, cmd_bench, register, run_bench
from gmt_ros.tools.bench.environment import busy_load, git_info, machine_info, rss_mb
from gmt_ros.tools.bench.graph_latency import analyze_graph
from gmt_ros.tools.bench.policy_step import measure_policy_step
from gmt_ros.tools.bench.probes import probe_main
from gmt_ros.tools.bench.report import percentiles_ms

__all__ = ["SECTIONS", "analyze_graph", "busy_load", "cmd_bench", "git_info", "machine_info", "measure_policy_step",
           "percentiles_ms", "probe_main", "register", "rss_mb", "run_bench"]
