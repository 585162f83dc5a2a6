"""`gmt-ros operate`: drive a running graph (robot or simulator) without a ROS install.

    gmt-ros operate status [--watch]          supervisor mode/fault, link, rates, player
    gmt-ros operate start|policy|hold|stop|estop|clear
                                              one supervisor request (std_srvs/Trigger)
    gmt-ros operate engage [--release-gantry] zero torque -> damping -> ramp -> hold -> policy,
                                              each step confirmed; then release the sim's gantry
    gmt-ros operate release-gantry            release a simulator's gantry (sim2sim.gantry_link)
    gmt-ros operate play|queue|loop NAME [--wait]   motion player; --wait follows the clip to its end
    gmt-ros operate next | stop-clip | list
    gmt-ros operate bringup [--release-gantry] [--play NAME] [--exit-when-done] [--report OUT]
                                              what the launch files' operator runs

It talks to the bridge and the player over ROS 2 (the rclpy wheels; ROS_DOMAIN_ID, else 0, as
`ros2` does) and, for the gantry only, to the simulator over the robot's DDS (``--dds-domain``,
``--interface``; default $GMT_ROS_DDS_DOMAIN / $GMT_ROS_DDS_INTERFACE, else 1 / lo). It never
writes a motor command: everything goes through the supervisor's services, which refuse what the
mode does not allow (their message is printed).

Exit status: 0 done; 1 refused, a supervisor fault, or nothing answering (the line says which);
2 bad input.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

REQUESTS = ("start", "policy", "hold", "stop", "estop", "clear")
PLAYER_VERBS = ("play", "queue", "loop")
STATUS_WAIT_S = 3.0  # status: the longest wait for the player's status beyond the first 1.2 s
NODES_UP_TIMEOUT_S = 120.0  # the launch starts everything at once; imports take a while on 2 cores
LINK_TIMEOUT_S = 60.0
STEP_TIMEOUT_S = 10.0
RAMP_TIMEOUT_S = 30.0  # ramp_time_s is the bridge's (3 s shipped)
POLICY_FRESH_S = 0.04  # hand over to the policy only while its latest PD target is this fresh
SETTLE_S = 1.0  # standing under the policy after the gantry release, before a clip


class OperateError(RuntimeError):
    """The graph did not do what was asked; the message says what was seen."""


def wait_for(predicate, timeout_s: float, what: str, poll=None, period_s: float = 0.05):
    """``predicate()`` once truthy (returned); ``poll()`` between tries (may raise); OperateError
    naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if poll is not None:
            poll()
        if time.monotonic() > deadline:
            raise OperateError(f"{what} (waited {timeout_s:.0f} s)")
        time.sleep(period_s)


def supervisor(obs) -> dict | None:
    return obs.snapshot("supervisor_latest")


def bridge_diagnostic(obs) -> tuple[str, dict] | None:
    """(message, values) of the bridge's latest /diagnostics status, if any."""
    diag = obs.snapshot("diagnostics").get("gmt_bridge")
    return None if diag is None else (diag[1], diag[2])


def wait_nodes(obs, timeout_s: float = NODES_UP_TIMEOUT_S, poll=None) -> dict:
    return wait_for(lambda: supervisor(obs), timeout_s,
                    "no /gmt/supervisor/state: is the bridge running in this ROS_DOMAIN_ID "
                    f"({os.environ.get('ROS_DOMAIN_ID', '0')})?", poll)


def wait_link(obs, timeout_s: float = LINK_TIMEOUT_S, poll=None) -> dict:
    """The bridge receives the robot's state and its start-up check is done; OperateError with
    the bridge's own explanation (its /diagnostics message) otherwise."""
    def linked():
        state = supervisor(obs)
        if state and state.get("startup_error"):
            raise OperateError(f"the bridge refused the robot: {state['startup_error']}")
        return state if state and state.get("lowstate_age_s") is not None and state.get("startup_checked") else None

    try:
        return wait_for(linked, timeout_s, "the bridge has no robot state", poll)
    except OperateError as exc:
        diag = bridge_diagnostic(obs)
        if diag is not None and "robot state" in str(exc):
            raise OperateError(f"{exc}: the bridge says: {diag[0]}") from None
        raise


def _target_age(obs) -> float:
    times = obs.snapshot("target_times")
    return time.time() - times[-1] if times else math.inf


def engage(obs, request, ramp_timeout_s: float = RAMP_TIMEOUT_S, poll=None, say=None) -> str | None:
    """Walk the supervisor to ``policy`` from wherever it is on the way (zero_torque, damping,
    ramp, hold), each step only once the state topic shows the previous one, the hand-over only
    while the policy publishes. ``request(name)`` -> (accepted, message). Returns None in policy,
    or the supervisor fault that stopped the sequence; OperateError when something does not answer."""
    say = say or (lambda _text: None)
    for _ in range(6):
        state = supervisor(obs)
        mode, fault = state.get("mode"), state.get("fault")
        if fault:
            return f"supervisor fault in {mode}: {fault}"
        if mode == "policy":
            return None
        if mode == "ramp":
            wait_for(lambda: supervisor(obs)["mode"] != "ramp" or supervisor(obs).get("fault"), ramp_timeout_s,
                     "the supervisor stayed in ramp", poll)
            continue
        if mode in ("zero_torque", "damping"):
            name = "start"
        elif mode == "hold":
            wait_for(lambda: _target_age(obs) < POLICY_FRESH_S, STEP_TIMEOUT_S,
                     f"the policy published no PD target for {POLICY_FRESH_S * 1e3:.0f} ms (is gmt_policy running?)", poll)
            name = "policy"
        else:
            raise OperateError(f"the supervisor is in an unknown mode {mode!r}")
        ok, message = request(name)
        say(f"{name}: {message}")
        if not ok:
            raise OperateError(f"/gmt/supervisor/{name} refused in {mode}: {message}")
        wait_for(lambda m=mode: supervisor(obs)["mode"] != m or supervisor(obs).get("fault"), STEP_TIMEOUT_S,
                 f"the supervisor stayed in {mode} after {name}", poll)
    raise OperateError(f"the supervisor did not reach policy (now {supervisor(obs).get('mode')})")


def status_lines(obs) -> list[str]:
    state = supervisor(obs)
    if state is None:
        return ["supervisor: no /gmt/supervisor/state yet"]
    age = state.get("lowstate_age_s")
    check = ("failed: " + state["startup_error"]) if state.get("startup_error") else (
        "passed" if state.get("startup_checked") else "pending")
    lines = [f"supervisor: {state.get('mode')} | fault: {state.get('fault') or 'none'} | dry run: "
             f"{'yes' if state.get('dry_run') else 'no'} | robot state age: {'none' if age is None else f'{age:.3f} s'}"
             f" | start-up check: {check}"]
    diag = bridge_diagnostic(obs)
    if diag is not None:
        message, v = diag
        lines.append(f"bridge: {message} | lowstate {v.get('lowstate_rate_hz')} Hz, lowcmd {v.get('lowcmd_rate_hz')} Hz,"
                     f" bad CRC {v.get('bad_crc_count')}, mode_machine {v.get('mode_machine')},"
                     f" {v.get('network_interface')} domain {v.get('dds_domain')}")
    policy = obs.snapshot("diagnostics").get("gmt_policy")
    if policy is not None:
        lines.append(f"policy: {policy[1]} | {policy[2].get('ticks_per_s')} ticks/s, "
                     f"{policy[2].get('published_per_s')} published/s")
    player = obs.snapshot("player")
    if player:
        p = player[-1][1]
        lines.append(f"player: {p.get('state')} {p.get('clip') or ''} {p.get('clip_time')}/{p.get('clip_duration')} s"
                     f" | loop {p.get('loop')} | queue {p.get('queue')}")
    return lines


def play(obs, verb: str, name: str, timeout_s: float = 10.0, poll=None) -> tuple[float, str]:
    """``verb NAME`` on /gmt/player/command, confirmed by the player's status; (time sent,
    the clip's library name)."""
    from gmt_ros.core.clip_library import list_clips

    sent = time.time()
    obs.publish_command(f"{verb} {name}")

    def taken():
        for t, s in obs.snapshot("player"):
            if t < sent:
                continue
            clip = s.get("clip") or ""
            if verb == "queue" and any(q == name or q.endswith("/" + name) for q in s.get("queue", [])):
                return clip or name
            if clip and (clip == name or clip.endswith("/" + name)) and s.get("state") in ("blending_in", "playing"):
                return clip
        return None

    try:
        clip = wait_for(taken, timeout_s, f"the player did not take '{verb} {name}'", poll)
    except OperateError:
        known = sorted(list_clips())
        hint = "" if any(n == name or n.endswith("/" + name) for n in known) else \
            f"; {name!r} is not a shipped clip ({', '.join(known)}), check the player's clip_dirs"
        raise OperateError(f"the player did not take '{verb} {name}' within {timeout_s:.0f} s{hint} "
                           f"(its log has the reason)") from None
    return sent, clip


def follow_clip(obs, clip: str, sent: float, poll=None) -> dict:
    """Until ``clip`` has played to its end (or the supervisor faults): {"played_to_end", "fault",
    "clip_duration", "played_s"}."""
    duration = None
    started = None
    while True:
        if poll is not None:
            poll()
        state = supervisor(obs)
        statuses = [(t, s) for t, s in obs.snapshot("player") if t >= sent]
        mine = [(t, s) for t, s in statuses if s.get("clip") == clip and s.get("state") == "playing"]
        if mine:
            duration = float(mine[-1][1].get("clip_duration") or 0.0)
            started = min(t - float(s.get("clip_time") or 0.0) for t, s in mine)
        if state and state.get("fault"):
            return {"played_to_end": False, "fault": state["fault"], "clip_duration": duration,
                    "played_s": None if started is None else round(time.time() - started, 2)}
        if started is not None and duration is not None and time.time() >= started + duration + 0.1:
            return {"played_to_end": True, "fault": None, "clip_duration": duration,
                    "played_s": round(time.time() - started, 2)}
        if started is None and time.time() - sent > 15.0:
            raise OperateError(f"the player never reported {clip} playing")
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------------
# CLI


class _Session:
    """The observer node (rclpy, own context), the SDK participant when the gantry is used."""

    def __init__(self, args):
        from gmt_ros.tools.graph_observer import GraphObserver

        self.args = args
        self.sdk = False
        domain = os.environ.get("ROS_DOMAIN_ID", "").strip() or "0"
        try:
            self.ros_domain = int(domain)
        except ValueError:
            raise OperateError(f"ROS_DOMAIN_ID must be an integer, got {domain!r}") from None
        self.obs = GraphObserver(self.ros_domain, windows=False, targets=args.action in ("engage", "bringup"))  # hand-over only while targets flow

    def request(self, name: str):
        return self.obs.call_trigger(f"/gmt/supervisor/{name}", timeout_s=STEP_TIMEOUT_S)

    def release_gantry(self) -> float:
        from gmt_ros.adapters import dds
        from sim2sim.gantry_link import release_gantry

        state = supervisor(self.obs)
        if state is not None and state.get("dry_run"):
            raise OperateError("the bridge is in dry run: nothing commands the robot, so the gantry stays on")
        if state is not None and state.get("mode") != "policy":
            raise OperateError(f"the supervisor is in {state.get('mode')}, not policy: the gantry stays on "
                               f"(gmt-ros operate engage first)")

        dds.init_channel_factory(self.args.dds_domain, self.args.interface)
        self.sdk = True
        return release_gantry()

    def close(self) -> None:
        self.obs.close()


def _say(text: str) -> None:
    print(f"[gmt-ros operate] {text}", flush=True)


def _bringup(s: _Session, args) -> int:
    obs = s.obs
    report: dict = {"clip": args.play, "engaged": False, "gantry_released": False}
    t0 = time.time()
    wait_nodes(obs)
    state = wait_link(obs, timeout_s=args.timeout)
    _say(f"robot state arriving; supervisor {state['mode']}, start-up check passed")
    code = 0
    if not args.no_engage:
        why = engage(obs, s.request, say=_say)
        if why:
            report["fault"] = why
            _say(f"not engaged: {why}")
            code = 1
        else:
            report["engaged"] = True
            _say("supervisor in policy")
    if code == 0 and args.release_gantry and report["engaged"]:  # never before the policy holds the robot
        took = s.release_gantry()
        report["gantry_released"] = True
        _say(f"gantry released ({took:.2f} s after the request)")
        time.sleep(SETTLE_S)
        state = supervisor(obs)
        if state.get("fault"):
            report["fault"] = state["fault"]
            _say(f"FAULT after the gantry release: {state['fault']}")
            code = 1
    if code == 0 and args.play:
        sent, clip = play(obs, "play", args.play)
        report["clip"] = clip
        _say(f"playing {clip}")
        result = follow_clip(obs, clip, sent)
        report.update(result)
        if result["played_to_end"]:
            _say(f"{clip} played to its end ({result['clip_duration']:.2f} s), supervisor "
                 f"{supervisor(obs)['mode']}, no fault")
        else:
            _say(f"{clip} NOT played to its end: supervisor fault after {result['played_s']} s: {result['fault']}")
            code = 1
    final = supervisor(obs) or {}
    diag = bridge_diagnostic(obs)
    report.update({"bridge": None if diag is None else diag[1], "supervisor_clips": final.get("clip")})
    report.update({"final_mode": final.get("mode"), "final_fault": final.get("fault"),
                   "wall_time_s": round(time.time() - t0, 2), "exit_status": code})
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    if args.exit_when_done or code:
        return code
    _say("up; watching the supervisor (Ctrl-C to leave; the graph keeps running)")
    _watch(obs, changes_only=True)
    return 0


def _watch(obs, changes_only: bool = False) -> None:
    last = None
    while True:
        lines = status_lines(obs)
        key = lines[0] if changes_only else None
        if not changes_only or key != last:
            print("\n".join(lines), flush=True)
            last = key
        time.sleep(0.2 if changes_only else 1.0)


def cmd_operate(args) -> int:
    from gmt_ros.tools import UsageError

    if args.action in PLAYER_VERBS and not args.name:
        raise UsageError(f"'{args.action}' needs a clip name, e.g. gmt-ros operate {args.action} gmt/walk_stand")
    if args.action not in PLAYER_VERBS and args.name:
        raise UsageError(f"'{args.action}' takes no clip name (got {args.name!r})")

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    if args.action == "list":
        from gmt_ros.core.clip_library import list_clips

        print("\n".join(sorted(list_clips())))
        return 0
    session = None
    code = 1
    try:
        session = _Session(args)
        code = _run(session, args)
    except OperateError as exc:
        print(f"gmt-ros operate {args.action}: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        code = 0
    finally:
        # A terminal's Ctrl-C reaches every process of its group and ros2 launch forwards its own
        # SIGINT too: a second signal must not interrupt the clean-up with a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if session is not None:
            session.close()
            if session.sdk:  # the SDK's DDS reader threads: leave as the bridge does (no teardown)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
    return code


def _run(s: _Session, args) -> int:
    obs = s.obs
    a = args.action
    if a == "bringup":
        return _bringup(s, args)
    if a == "release-gantry":
        wait_nodes(obs, timeout_s=args.timeout)  # released only under a supervisor in policy
        took = s.release_gantry()
        _say(f"gantry released ({took:.2f} s after the request)")
        return 0
    wait_nodes(obs, timeout_s=args.timeout)
    if a == "status":
        # One round of diagnostics (1 Hz) and player status (5 Hz); a new participant may take a
        # while to match the player's publisher on a loaded machine, so wait for its status too
        # (up to STATUS_WAIT_S: a graph without a player still prints the rest).
        time.sleep(1.2)
        deadline = time.monotonic() + STATUS_WAIT_S
        while not obs.snapshot("player") and time.monotonic() < deadline:
            time.sleep(0.05)
        if args.watch:
            _watch(obs)
        print("\n".join(status_lines(obs)))
        return 0
    if a in REQUESTS:
        ok, message = s.request(a)
        _say(f"{a}: {message}")
        return 0 if ok else 1
    if a == "engage":
        wait_link(obs, timeout_s=args.timeout)
        why = engage(obs, s.request, say=_say)
        if why:
            _say(f"not engaged: {why}")
            return 1
        _say("supervisor in policy")
        if args.release_gantry:
            took = s.release_gantry()
            _say(f"gantry released ({took:.2f} s after the request)")
        return 0
    if a in PLAYER_VERBS:
        sent, clip = play(obs, a, args.name)
        _say(f"{a} {clip}: taken")
        if args.wait and a == "play":
            result = follow_clip(obs, clip, sent)
            _say(f"{clip}: " + ("played to its end" if result["played_to_end"] else f"stopped: {result['fault']}"))
            return 0 if result["played_to_end"] else 1
        return 0
    if a in ("next", "stop-clip"):
        service = "/gmt/player/play_next" if a == "next" else "/gmt/player/stop"
        ok, message = obs.call_trigger(service, timeout_s=STEP_TIMEOUT_S)
        _say(f"{a}: {message}")
        return 0 if ok else 1
    raise OperateError(f"unknown action {a!r}")


ACTIONS = ("status", *REQUESTS, "engage", "release-gantry", *PLAYER_VERBS, "next", "stop-clip", "list", "bringup")


def register(subparsers) -> None:
    p = subparsers.add_parser("operate", help="drive a running graph (robot or simulator): supervisor modes, clips, "
                                              "state and faults", description=__doc__.split("\n\n")[0],
                              epilog="\n\n".join(__doc__.split("\n\n")[1:3]),
                              formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("action", choices=ACTIONS, metavar="ACTION", help=f"one of: {', '.join(ACTIONS)}")
    p.add_argument("name", nargs="?", help="clip name for play/queue/loop (gmt-ros clips lists them)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the graph to answer (default 30)")
    p.add_argument("--wait", action="store_true", help="play: follow the clip to its end; exit 1 on a supervisor fault")
    p.add_argument("--watch", action="store_true", help="status: keep printing every second")
    p.add_argument("--release-gantry", action="store_true", help="engage/bringup: release the simulator's gantry once in policy")
    p.add_argument("--dds-domain", type=int, default=int(os.environ.get("GMT_ROS_DDS_DOMAIN") or 1),
                   help="the robot's DDS domain, for the gantry (default $GMT_ROS_DDS_DOMAIN, else 1)")
    p.add_argument("--interface", default=os.environ.get("GMT_ROS_DDS_INTERFACE") or "lo",
                   help="the robot's DDS interface, for the gantry (default $GMT_ROS_DDS_INTERFACE, else lo)")
    p.add_argument("--play", metavar="NAME", help="bringup: play this clip once engaged")
    p.add_argument("--no-engage", action="store_true", help="bringup: wait for the link only; engage by hand or remote")
    p.add_argument("--exit-when-done", action="store_true",
                   help="bringup: exit once done (0: in policy, clip played to its end, no fault) instead of watching")
    p.add_argument("--report", help="bringup: write a JSON summary here")
    p.set_defaults(func=cmd_operate)
