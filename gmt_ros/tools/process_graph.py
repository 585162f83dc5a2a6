"""The node graph of ``gmt_ros.graph`` as separate OS processes (no ROS install, no launch).

Each node runs as its console script from the interpreter's bin directory (the venv's
``gmt-ros-bridge`` ...) or, when that is missing, as ``python -m <module>``, with the same
arguments the launch file gives it (``graph.command_line``: the YAML under config/, then launch
arguments, then per-node extras). Every process:

- gets its own session / process group, so a stop reaches anything it started;
- writes stdout and stderr to ``<log_dir>/<key>.log`` (a pipe nobody reads would block it);
- gets SIGTERM from the kernel if the thread that started it dies (``setpriv --pdeathsig``,
  when available), so even a runner killed with SIGKILL leaves no node behind;
- runs at its ``nice`` value (an int for all nodes or a dict by node key; 0: unchanged). With the
  kernel's autogroup scheduling (each session is a group, and CPU is shared between groups by the
  group's nice, not the processes'), a new session alone would make nice meaningless, so the value
  is set on the node's own autogroup too (/proc/PID/autogroup). Negative values need root or
  CAP_SYS_NICE; without them the node runs at normal priority, ``nice`` says so in its log and
  ``niceness()`` shows it.

``stop()`` sends SIGINT (the nodes' clean shutdown: the bridge damps for shutdown_damping_s, the
sim writes its report), waits, then SIGTERM, then SIGKILL to the whole group. ``ProcessGraph`` is
a context manager whose exit stops everything still running, in reverse start order.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gmt_ros import graph

LOG_TAIL_LINES = 25


class Sim2SimError(RuntimeError):
    """The graph could not run (a node died or never came up, no DDS link, ...). Here, below the
    runners that raise it (gmt_ros.tools.sim2sim_run and the stream_run it uses), so they need not
    import each other."""


class NodeFailedError(RuntimeError):
    """A node exited (or could not start) when it should be running; the message names it and
    ends with the tail of its log."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def executable_argv(spec: graph.NodeSpec, bin_dir: Path | None = None) -> list[str]:
    """How to run ``spec``: its console script next to the interpreter, else ``python -m``."""
    bin_dir = Path(sys.executable).parent if bin_dir is None else Path(bin_dir)
    script = bin_dir / spec.executable
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", spec.module]


def _pdeathsig_prefix() -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ("" if it does not exist)."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


@dataclass
class NodeProcess:
    spec: graph.NodeSpec
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen
    started_at: float  # time.time()
    stop_signal: str | None = None  # how it was ended by stop(): "SIGINT", "SIGTERM", "SIGKILL"
    killed_at: float | None = None  # time.time() of a kill() (fault injection)

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def running(self) -> bool:
        return self.popen.poll() is None


@dataclass
class ProcessGraph:
    """Start and stop the nodes of ``graph.graph_nodes(kind, source)``.

    ``arguments``: launch arguments (``graph.ARGUMENT_TARGETS`` keys), e.g. ``{"interface": "lo"}``,
    defaulting to ``graph.ARGUMENT_DEFAULTS[kind]``; ``extra``: per-node settings by node key
    (``{"bridge": {"ramp_time_s": "1.5"}}``); ``env``: the processes' environment (default: ours).
    """

    kind: str
    log_dir: Path
    arguments: dict[str, str] = field(default_factory=dict)
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    env: dict[str, str] | None = None
    bin_dir: Path | None = None
    nice: int | dict[str, int] = 0
    fifo: dict[str, int] = field(default_factory=dict)  # SCHED_FIFO priority by node key (needs root / CAP_SYS_NICE)
    processes: dict[str, NodeProcess] = field(default_factory=dict)
    source: str = graph.DEFAULT_SOURCE  # the motion-target source (graph.SOURCES)

    def __post_init__(self):
        self.specs = {spec.key: spec for spec in graph.graph_nodes(self.kind, self.source)}
        unknown = set(self.extra) - set(self.specs)
        if unknown:
            raise ValueError(f"settings for node(s) {sorted(unknown)} not in the {self.kind} graph ({', '.join(self.specs)})")
        self.arguments = graph.ARGUMENT_DEFAULTS[self.kind] | {k: str(v) for k, v in self.arguments.items()}
        graph.settings_for(next(iter(self.specs.values())), self.arguments)  # ValueError for an unknown argument
        self.log_dir = Path(self.log_dir)

    # -- start -------------------------------------------------------------------------------

    def argv(self, key: str) -> list[str]:
        spec = self._spec(key)
        return executable_argv(spec, self.bin_dir) + graph.command_line(spec, self.arguments, self.extra.get(key))

    def start(self, key: str, extra_args: list[str] | None = None) -> NodeProcess:
        """Start node ``key`` (``extra_args`` appended to its command line)."""
        spec = self._spec(key)
        if key in self.processes and self.processes[key].running():
            raise RuntimeError(f"the {key} node is already running (pid {self.processes[key].pid})")
        argv = self.argv(key) + list(extra_args or [])
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{key}.log"
        with open(log_path, "w") as log:
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            try:
                nice = self.nice.get(key, 0) if isinstance(self.nice, dict) else self.nice
                popen = popen_in_own_session(_pdeathsig_prefix() + argv, nice, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, env=self.env)
            except OSError as exc:
                raise NodeFailedError(key, f"the {key} node could not be started ({' '.join(argv)}): {exc}") from None
        if self.fifo.get(key):
            _set_fifo(popen.pid, self.fifo[key], log_path)
        proc = NodeProcess(spec, argv, log_path, popen, time.time())
        self.processes[key] = proc
        return proc

    def _spec(self, key: str) -> graph.NodeSpec:
        if key not in self.specs:
            raise ValueError(f"no node {key!r} in the {self.kind} graph; nodes: {', '.join(self.specs)}")
        return self.specs[key]

    # -- watch -------------------------------------------------------------------------------

    def dead(self) -> dict[str, int]:
        """Started nodes that have exited (and were not stopped or killed on purpose): key -> exit code."""
        return {k: p.poll() for k, p in self.processes.items()
                if p.poll() is not None and p.stop_signal is None and p.killed_at is None}

    def check_alive(self, keys=None) -> None:
        """Raise NodeFailedError for the first of ``keys`` (default: all started) that exited."""
        for key, code in self.dead().items():
            if keys is None or key in keys:
                proc = self.processes[key]
                raise NodeFailedError(key, f"the {key} node exited early with code {code}; "
                                           f"last lines of {proc.log_path}:\n{tail(proc.log_path)}")

    def cpu_seconds(self) -> dict[str, float | None]:
        """CPU time (user + system) each running node has used so far; None once it has exited."""
        out = {}
        tick = os.sysconf("SC_CLK_TCK")
        for key, proc in self.processes.items():
            try:
                stat = Path(f"/proc/{proc.pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
                out[key] = round((int(fields[11]) + int(fields[12])) / tick, 2) if proc.running() else None
            except (OSError, ValueError, IndexError):
                out[key] = None
        return out

    def niceness(self) -> dict[str, dict | None]:
        """Each running node's nice value and its autogroup's (None once it has exited)."""
        out = {}
        for key, proc in self.processes.items():
            try:
                stat = Path(f"/proc/{proc.pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                value = {"process": int(fields[16])}
                if int(fields[38]) == os.SCHED_FIFO:
                    value["fifo"] = int(fields[37])
                group_nice = autogroup_nice(proc.pid)
                if group_nice is not None:
                    value["autogroup"] = group_nice
                out[key] = value if proc.running() else None
            except (OSError, ValueError, IndexError):
                out[key] = None
        return out

    def log_tail(self, key: str, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.processes[key].log_path, lines)

    # -- stop --------------------------------------------------------------------------------

    def kill(self, key: str, sig: int = signal.SIGKILL) -> float:
        """Send ``sig`` to node ``key``'s process group now (fault injection); returns time.time()
        just before the signal. The node no longer counts as dying early."""
        proc = self.processes[key]
        proc.killed_at = time.time()
        _signal_group(proc, sig)
        return proc.killed_at

    def stop(self, key: str, timeout_s: float = 10.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL (each after waiting); returns the exit code."""
        proc = self.processes[key]
        steps = ((signal.SIGINT, timeout_s), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0))
        for sig, wait_s in steps:
            if proc.poll() is not None:
                break
            proc.stop_signal = signal.Signals(sig).name
            _signal_group(proc, sig)
            try:
                proc.popen.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        if proc.stop_signal is None:
            proc.stop_signal = "already exited"
        _signal_group(proc, signal.SIGKILL)  # anything the node itself started
        return proc.poll()

    def stop_all(self, order=None, timeout_s: float = 10.0) -> dict[str, int | None]:
        """Stop every started node (``order``: keys first, then the rest in reverse start order)."""
        keys = list(order or [])
        keys += [k for k in reversed(list(self.processes)) if k not in keys]
        codes = {}
        for key in keys:
            if key in self.processes:
                try:
                    codes[key] = self.stop(key, timeout_s)
                except Exception:  # go on stopping the others
                    _signal_group(self.processes[key], signal.SIGKILL)
                    codes[key] = self.processes[key].poll()
        return codes

    def exit_codes(self) -> dict[str, int | None]:
        return {k: p.poll() for k, p in self.processes.items()}

    def __enter__(self) -> ProcessGraph:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


def _set_fifo(pid: int, priority: int, log_path: Path) -> None:
    """SCHED_FIFO for the node's main thread, right after exec: the threads it starts later
    (DDS listeners, timers) inherit it. Refused without the privilege: said in the node's log."""
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        with open(log_path, "a") as log:
            log.write(f"(process_graph: SCHED_FIFO {priority} refused: {exc}; running with normal scheduling)\n")


def autogroup_nice(pid: int | str = "self") -> int | None:
    """The nice value of the process's autogroup ("/autogroup-123 nice -10"), or None where the
    kernel has no autogroup scheduling: the file is then absent, or present and empty
    (sched_autogroup_enabled=0, as on some CI hosts)."""
    try:
        return parse_autogroup(Path(f"/proc/{pid}/autogroup").read_text())
    except OSError:
        return None


def parse_autogroup(text: str) -> int | None:
    words = text.split()
    try:
        return int(words[2]) if len(words) == 3 and words[1] == "nice" else None
    except ValueError:
        return None


def nice_prefix(nice: int) -> list[str]:
    """``nice -n N`` to run a command at the absolute nice value ``nice`` (0: unchanged); -n is
    relative to our own niceness. Without the privilege nice says so and runs the command as is."""
    relative = nice - os.getpriority(os.PRIO_PROCESS, 0) if nice else 0
    return ["nice", "-n", str(relative)] if relative else []


def popen_in_own_session(argv: list[str], nice: int = 0, **popen_kwargs) -> subprocess.Popen:
    """``argv`` as a session leader (its own process group and autogroup) at the absolute nice
    value ``nice`` (0: unchanged): the process's and, since nice applies per autogroup, its group's."""
    proc = subprocess.Popen(nice_prefix(nice) + list(argv), start_new_session=True, **popen_kwargs)
    if nice:
        set_autogroup_nice(proc.pid, nice)
    return proc


def set_autogroup_nice(pid: int | str, nice: int) -> None:
    """The node is a session leader, so its autogroup is its own (absent without autogroup)."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")
    except OSError:  # no autogroup scheduling, or not allowed: the process nice still applies
        pass


def _signal_group(proc: NodeProcess, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the node's pid
    except (ProcessLookupError, PermissionError):
        pass
    if sig == signal.SIGKILL:
        try:
            proc.popen.wait(timeout=3.0)
        except subprocess.TimeoutExpired:
            pass
