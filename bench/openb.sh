#!/usr/bin/env bash
# The FGD allocation experiment on Alibaba's openb trace: every openb policy on the `default`
# and `multigpu50` workloads, in the trace's order and shuffled as the FGD artifact does, each
# the mean of 10 seeds at 100% of the demand arrived. Prints one line per run.
# Usage: bench/openb.sh [LUTECE_BINARY]   (default: target/release/lutece)
set -euo pipefail
cd "$(dirname "$0")/.."
lutece=${1:-target/release/lutece}
traces=../shared/traces/openb
for order in "" --shuffle; do
  for workload in default multigpu50; do
    for policy in random bestfit fgd default; do
      json=$("$lutece" sim --trace "openb:$traces/openb_pod_list_$workload.csv" \
        --fleet "openb:$traces/openb_node_list_gpu_node.csv" --policy "$policy" \
        --seed 1 --seeds 10 --arrive-until 100 $order --output json)
      python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print("%-9s %-10s %-7s allocation %.2f%%  decision p50 %.0f us  p99 %.0f us" % (
    sys.argv[2], sys.argv[3], sys.argv[4], d["allocation_ratio"],
    d["decision_p50_us"], d["decision_p99_us"]))' "$json" "${order:---trace-order}" "$workload" "$policy"
    done
  done
done
