#!/usr/bin/env bash
# Where a node's resident memory goes (the README's Performance notes):
#   bash scripts/node_memory.sh [CONSOLE_SCRIPT=gmt-ros-policy] [CONFIG=config/policy.yaml]
# Starts the node alone (loopback, a test ROS domain), waits 8 s for it to settle, then prints its
# RSS split into anonymous memory and files mapped from disk (/proc/PID/smaps_rollup) and the
# mappings holding more than 1.5 MB (/proc/PID/smaps), largest first; then stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
node=${1:-gmt-ros-policy}; config=${2:-config/policy.yaml}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-63} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
".venv/bin/$node" --ros-args --params-file "$config" >/dev/null 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
sleep 8
echo "[memory] $node (pid $pid), commit $(git rev-parse --short HEAD)"
awk '/^Rss:/{r = $2} /^Anonymous:/{a = $2}
     END {printf "[memory] RSS %d kB = anonymous %d kB + mapped from files %d kB\n", r, a, r - a}' "/proc/$pid/smaps_rollup"
awk '/^[0-9a-f]+-[0-9a-f]+ /{name = ($6 == "" ? "(anonymous)" : $6)} /^Rss:/{rss[name] += $2}
     END {for (n in rss) if (rss[n] > 1500) printf "%8d kB  %s\n", rss[n], n}' "/proc/$pid/smaps" | sort -rn | sed 's/^/[memory] /'
