#!/usr/bin/env bash
# A second simulator publishing rt/lowstate on the domain of a running sim2sim graph: what does the
# bridge do? (docs/SAFETY.md, "One robot")
#   bash scripts/second_publisher.sh [DELAY_S=16] [CLIP=gmt/crouchwalk_stand]
# Starts `gmt-ros sim2sim --motion CLIP --keep-logs DIR` (loopback, test domains), then DELAY_S
# later a second `gmt-ros-sim` on the same DDS domain (at nice 19, so that its start-up does not
# starve the graph on a small machine; 16 s: while the clip plays; 0: before the
# graph's own simulator publishes). Prints the run's summary line and the bridge's fault and
# publisher lines; the logs stay in the printed directory. With single_state_source (the default)
# the bridge faults on the first state of the second writer, naming both; before it, it acted on
# both robots' states interleaved. About 30 s.
set -uo pipefail
cd "$(dirname "$0")/.."
delay=${1:-16}; clip=${2:-gmt/crouchwalk_stand}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-64} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
sdk_domain=${GMT_ROS_DDS_DOMAIN:-65}
logs=$(mktemp -d /tmp/second_publisher.XXXXXX)
echo "[second publisher] commit $(git rev-parse --short HEAD), clip $clip, second simulator after ${delay} s, SDK domain $sdk_domain, logs $logs"
gmt-ros sim2sim --motion "$clip" --domain "$sdk_domain" --keep-logs "$logs/run" > "$logs/run.out" 2>&1 &
runner=$!
sleep "$delay"
nice -n 19 gmt-ros-sim --config config/sim2sim.yaml --interface lo --domain "$sdk_domain" --dr none > "$logs/second_sim.log" 2>&1 &
second=$!
wait "$runner"
kill -INT "$second" 2>/dev/null; sleep 2; kill -KILL "$second" 2>/dev/null
cut -c1-400 "$logs/run.out" | tail -n 3
grep -h "FAULT\|publisher\|tick went\|fall check inputs" "$logs/run/bridge.log" 2>/dev/null || echo "(no bridge log: see $logs/run.out)"
