#!/usr/bin/env bash
# Issue 12's stream check, the README's table: each clip streamed live through gmt_stream (30 Hz,
# ±30 ms jitter, 5 % lost, positions only) in the node graph, then played by the player, errors as
# ratios stream / player. About 6 minutes on 2 cores; reports in out/stream_<clip>_<seed>.json.
#   bash scripts/stream_comparison.sh
set -euo pipefail
cd "$(dirname "$0")/.."
git log --oneline -1
for row in "gmt/walk_stand 0" "gmt/walk_stand 1" "gmt/dance_waltz 0" "twist2/walk_001 0"; do
  set -- $row
  echo "=== $1, link seed $2"
  .venv/bin/gmt-ros sim2sim --source stream --motion "$1" --stream-rate 30 --stream-jitter-ms 30 --stream-drop 0.05 \
    --stream-seed "$2" --compare-player --realtime --report "out/stream_${1//\//_}_$2.json"
done
