"""Fast DDS without shared memory (gmt_ros/adapters/fastdds_profile.py): which profile each ROS
environment gets, and a real node process running with it: no shared-memory thread of Fast DDS, no
multicast discovery socket, and still heard by a participant that rmw_fastrtps configures its
default way (shared memory on), as a user's ``ros2 topic echo`` would be."""
import os
import subprocess
import sys
import textwrap
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from node_process import NodeProcess

from gmt_ros.adapters import fastdds_profile
from gmt_ros.adapters.fastdds_profile import LOCALHOST_PROFILE, OTHER_RANGES_PROFILE, plan
from gmt_ros.core.paths import config_dir

PROFILES = Path("/profiles")
LOCAL, OTHER = PROFILES / LOCALHOST_PROFILE, PROFILES / OTHER_RANGES_PROFILE


@pytest.mark.parametrize("env, profile, discovery_range", [
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, LOCAL, "SYSTEM_DEFAULT"),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "localhost"}, LOCAL, "SYSTEM_DEFAULT"),
    ({"ROS_LOCALHOST_ONLY": "1"}, LOCAL, "SYSTEM_DEFAULT"),
    # a child of a process that applied the LOCALHOST plan: the same plan again
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT", "FASTDDS_DEFAULT_PROFILES_FILE": str(LOCAL)}, LOCAL,
     "SYSTEM_DEFAULT"),
    # ... whose child environment was set to LOCALHOST again (gmt-ros sim2sim does this for its nodes)
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "FASTDDS_DEFAULT_PROFILES_FILE": str(LOCAL)}, LOCAL,
     "SYSTEM_DEFAULT"),
    ({}, OTHER, None),  # unset: SUBNET, the ROS 2 default
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, OTHER, None),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT"}, OTHER, None),
    ({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, OTHER, None),
    # left as configured:
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}, None, None),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_STATIC_PEERS": "10.0.0.2"}, None, None),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}, None, None),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "GMT_ROS_FASTDDS_SHM": "1"}, None, None),
    ({"RMW_IMPLEMENTATION": "rmw_zenoh_cpp"}, None, None),
])
def test_plan(env, profile, discovery_range):
    chosen = plan(dict(env), PROFILES)
    assert (chosen.profile, chosen.discovery_range) == (profile, discovery_range), chosen.text
    if profile is None:
        assert "does not apply" in chosen.text or "shared memory may be on" in chosen.text


def test_apply_sets_the_environment_and_says_what_is_in_force():
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    text = fastdds_profile.apply(env)
    assert env == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",
                   "FASTDDS_DEFAULT_PROFILES_FILE": str(config_dir() / LOCALHOST_PROFILE)}
    assert "no shared memory" in text and "loopback" in text
    mine = {"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}
    assert "your profile /mine.xml" in fastdds_profile.apply(mine)
    assert mine == {"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}


@pytest.mark.parametrize("name", [LOCALHOST_PROFILE, OTHER_RANGES_PROFILE])
def test_shipped_profiles_replace_the_builtin_transports_with_udp(name):
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(config_dir() / name).getroot()
    participant = root.find("d:profiles/d:participant", ns)
    assert participant.get("is_default_profile") == "true"
    assert participant.find("d:rtps/d:useBuiltinTransports", ns).text == "false"
    used = [t.text for t in participant.findall("d:rtps/d:userTransports/d:transport_id", ns)]
    kinds = {d.find("d:transport_id", ns).text: d.find("d:type", ns).text
             for d in root.findall("d:profiles/d:transport_descriptors/d:transport_descriptor", ns)}
    assert used and all(kinds[t] == "UDPv4" for t in used)


DEFAULT_PARTICIPANT = textwrap.dedent("""
    import os, sys, time
    import rclpy
    from trajectory_msgs.msg import JointTrajectory
    from gmt_ros.nodes.qos import stream_qos
    rclpy.init()
    node = rclpy.create_node("default_fastdds_listener")
    got = []
    node.create_subscription(JointTrajectory, sys.argv[1], got.append, stream_qos(10))
    end = time.monotonic() + 20
    while len(got) < 10 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    threads = set()
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/comm") as f:
            threads.add(f.read().strip())
    print("received", len(got), "threads", " ".join(sorted(threads)))
""")


def _thread_names(pid: int) -> list[str]:
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            names.append(Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return names


def _udp_ports(pid: int) -> list[int]:
    out = subprocess.run(["ss", "-uanp"], capture_output=True, text=True, check=True).stdout
    return [int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if f"pid={pid}," in line]


@pytest.mark.slow
def test_a_node_runs_over_udp_on_loopback_and_a_default_participant_hears_it():
    topic = f"/t{uuid.uuid4().hex[:8]}/motion_target"
    player = NodeProcess("gmt_ros.nodes.motion_player_node", "motion_player.yaml", {"motion_target_topic": topic})
    try:
        player.wait_for_log("Fast DDS over UDP on loopback only", timeout=20)
        player.wait_for_log("windows of", timeout=20)
        threads = _thread_names(player.proc.pid)
        assert any(t.startswith("dds.udp") for t in threads), threads
        assert not any(t.startswith("dds.shm") for t in threads), threads  # no shared-memory port or watchdog
        # LOCALHOST kept: no socket on the domain's multicast discovery port (RTPS: 7400 + 250 * domain)
        ports = _udp_ports(player.proc.pid)
        assert ports and 7400 + 250 * int(os.environ["ROS_DOMAIN_ID"]) not in ports, ports

        # A participant as rmw_fastrtps sets one up for LOCALHOST without a profile: shared memory on.
        env = {k: v for k, v in os.environ.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
        env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
        listener = subprocess.run([sys.executable, "-c", DEFAULT_PARTICIPANT, topic], env=env, capture_output=True,
                                  text=True, timeout=60, check=False)
        assert listener.returncode == 0, listener.stderr
        words = listener.stdout.split()
        assert any(w.startswith("dds.shm") for w in words), listener.stdout  # it did have shared memory
        assert int(words[words.index("received") + 1]) >= 10, listener.stdout
    finally:
        player.stop()
