#!/usr/bin/env bash
# Does a ROS participant joining the running graph disturb it? (docs/SAFETY.md, "New participants")
#   bash scripts/discovery_stall.sh [RUNS=3] [-- extra gmt-ros sim2sim options, e.g. --realtime]
# Each run plays gmt/basic_walk (39 s) through the headless graph (gmt-ros sim2sim, loopback, test
# domains) while a new DDS participant joins again and again: `gmt-ros operate status` (as an
# operator's commands do), or with JOINER=ros-default a plain rclpy process set up as rmw_fastrtps
# does without gmt_ros's profile (shared memory on), echoing /joint_states and /gmt/joint_targets
# for 2 s (as `ros2 topic echo` or rviz would). GMT_ROS_FASTDDS_SHM=1 runs the graph as before
# gmt_ros/adapters/fastdds_profile.py (Fast DDS's shared memory on), for comparison. Per run: whether the clip played to the end or the
# supervisor damped and why, how many participants joined, and the bridge's late-target lines (PD
# targets further apart than 60 ms: how far apart they arrived, how far apart the policy stamped
# them, how old the first one after the gap was). About 1 minute per run.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}; shift || true
[ "${1:-}" = "--" ] && shift
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-61} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
sdk_domain=${GMT_ROS_DDS_DOMAIN:-62}
echo "[stall] commit $(git rev-parse --short HEAD), ROS domain $ROS_DOMAIN_ID, SDK domain $sdk_domain, $(nproc) CPUs"
echo_joiner='
import time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
rclpy.init(); node = rclpy.create_node("discovery_stall_joiner")
for topic in ("/joint_states", "/gmt/joint_targets"):
    node.create_subscription(JointState, topic, lambda _msg: None, qos_profile_sensor_data)
end = time.monotonic() + 2
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
'
echo "[stall] joining: ${JOINER:-operate}; gmt_ros's Fast DDS profile: $([ "${GMT_ROS_FASTDDS_SHM:-}" = 1 ] && echo 'off (GMT_ROS_FASTDDS_SHM=1: shared memory on)' || echo 'on (no shared memory)')"
damped=0
for k in $(seq 1 "$runs"); do
  d=$(mktemp -d /tmp/discovery_stall.XXXX)
  .venv/bin/gmt-ros sim2sim --motion gmt/basic_walk --domain "$sdk_domain" --ros-domain "$ROS_DOMAIN_ID" \
    --keep-logs "$d" --report "$d/report.json" "$@" >"$d/run.out" 2>&1 &
  graph=$!
  sleep 12  # the graph is up and the policy in charge
  joins=0
  while kill -0 "$graph" 2>/dev/null; do
    if [ "${JOINER:-operate}" = ros-default ]; then
      env -u FASTDDS_DEFAULT_PROFILES_FILE timeout 20 .venv/bin/python -c "$echo_joiner" >/dev/null 2>&1
    else
      timeout 20 .venv/bin/gmt-ros operate status --timeout 3 --dds-domain "$sdk_domain" >/dev/null 2>&1
    fi
    joins=$((joins + 1)); sleep 0.3
  done
  wait "$graph"
  outcome=$(grep -o 'upright over [0-9.]* s\|STOPPED by the supervisor at [0-9.]* s\|NOT PLAYED[^|]*' "$d/run.out" | head -1)
  fault=$(grep -o 'FAULT: [^|]*' "$d/run.out" | head -1)
  [ -n "$fault" ] && damped=$((damped + 1))
  echo "[stall] run $k: ${outcome:-no result (see $d/run.out)} | $joins participants joined | ${fault:-no fault} | logs $d"
  grep -ho "PD targets arrived .*" "$d/bridge.log" | sed 's/^/[stall]   /'
done
echo "[stall] $damped of $runs runs damped"
