#!/usr/bin/env bash
# The audit log's append and verify rates, beside a log without chain or signatures: appends
# as the server makes them (chained, one durable SQLite transaction each) against plain
# durable inserts of the same lines, and verifying an export against parsing its lines.
# Usage: bench/audit.sh [ENTRIES]   (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
LUTECE_AUDIT_ENTRIES=${1:-5000} cargo test --release -q -p lutece-server --lib audit_rates \
  -- --ignored --nocapture 2>&1 | grep -E "^(audit|append|verify)"
