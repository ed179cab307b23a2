#!/usr/bin/env bash
# Explain latency benchmark (bench/explain_latency.ts): builds the TypeScript, then times the
# explain pipeline on ONNX Runtime and tfjs-wasm (2 threads) for the tiny and resnet18 pipelines.
# When a quickstart run exists (runs/quickstart/export), the tiny pipeline uses its trained models
# and test images; otherwise models from a few training steps are built under runs/bench_explain.
#   bash bench/explain_latency.sh [ARGS for explain_latency.js]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "uptime: $(uptime)"
npx tsc -p tsconfig.json
ARGS=()
if [ -f runs/quickstart/export/manifest.json ]; then
  ARGS+=(--export tiny=runs/quickstart/export --data tiny=runs/quickstart/dataset)
fi
node dist/bench/explain_latency.js "${ARGS[@]}" "$@"
