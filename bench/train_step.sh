#!/usr/bin/env bash
# Training-step benchmark, tfjs (wasm, wasm-native, cpu) vs PyTorch CPU: one command, one table.
#
#   bash bench/train_step.sh [--quick] [--no-cpu | --cpu-full] [-- ARGS for train_step_bench.js]
#
# 1. installs Debian's python3-torch and libopenblas0-pthread when missing (as root: apt-get);
# 2. builds the TypeScript (npx tsc);
# 3. runs bench/pytorch_train_step.py with /usr/bin/python3 (Debian's, which has torch; not a
#    pyenv/venv python3 on PATH), 2 threads, without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (they
#    slow OpenBLAS; unset for that command only);
#    It also times a PyTorch copy of the tiny extractor step (categories and verbs of the synth
#    source, read from the build);
# 4. runs dist/bench/train_step_bench.js with the PyTorch results: every section on plain wasm
#    and on wasm-native (heavy kernels in ONNX Runtime), then the table with ratios to PyTorch,
#    wasm / wasm-native, and the per-kernel profile of both.
# About 2-3 minutes with --no-cpu (both tfjs backends, 2026-11-29). tfjs-cpu runs one batch-1 step at 128 px (~2 min);
# --cpu-full runs the batch-8 step instead (10-20 minutes alone), --no-cpu skips it.
# Run it on a quiet machine: `uptime` is printed first; with other work running, every number
# (PyTorch's OpenMP threads most of all) is slower and noisier.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
THREADS=2
BATCH=8
TORCH_ARGS=(--threads "$THREADS" --batch "$BATCH" --sizes 128,224 --steps 5 --warmup 2 --forward-runs 10)
NODE_ARGS=(--threads "$THREADS" --batch "$BATCH" --sizes 128,224 --steps 3 --warmup 1 --forward-runs 5 --cpu-steps 1 --cpu-sizes 128 --cpu-batch 1)
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) TORCH_ARGS+=(--steps 3 --warmup 1 --forward-runs 5); NODE_ARGS+=(--steps 2 --forward-runs 3) ;;
    --no-cpu) NODE_ARGS+=(--cpu-steps 0) ;;
    --cpu-full) NODE_ARGS+=(--cpu-batch "$BATCH") ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "train_step.sh: unknown argument '$1' (--quick, --no-cpu, --cpu-full, -- ARGS)" >&2; exit 2 ;;
  esac
  shift
done

# -- PyTorch with OpenBLAS, from Debian
missing=()
"$PY" -c 'import torch' >/dev/null 2>&1 || missing+=(python3-torch)
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || missing+=(libopenblas0-pthread)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "train_step.sh: needs ${missing[*]}: run as root, or: sudo apt-get install -y python3-torch libopenblas0-pthread" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y python3-torch libopenblas0-pthread >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y python3-torch libopenblas0-pthread >/dev/null; }
fi

# -- build
npx tsc -p tsconfig.json
# categories,verbs of the synth source: the PyTorch copy of the tiny extractor has the same heads
EXTRACTOR=$(node -e "const s = require('./dist/src/data/synth'); console.log(s.SYNTH_CATEGORIES.length + ',' + s.SYNTH_VERBS.length)")
TORCH_ARGS+=(--extractor "$EXTRACTOR")

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "uptime:$(uptime)"
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
  echo "warning: load average $load1: other work is running; the numbers below are slower and noisier than on a quiet machine" >&2
  if [ -z "${OMP_WAIT_POLICY:-}" ]; then
    echo "warning: PyTorch's OpenMP threads spin-wait and lose most to contention; OMP_WAIT_POLICY=PASSIVE bash bench/train_step.sh helps on a busy machine" >&2
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# -- PyTorch reference (OpenBLAS tuning variables unset for this command only, when set)
unset_env=()
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [ -n "${!v+x}" ]; then unset_env+=(-u "$v"); echo "(unsetting $v=${!v} for PyTorch)"; fi
done
echo
echo "== PyTorch reference ($PY)"
env "${unset_env[@]}" "$PY" bench/pytorch_train_step.py "${TORCH_ARGS[@]}" --json "$tmp/torch.json"

# -- tfjs
echo
echo "== tfjs"
node dist/bench/train_step_bench.js "${NODE_ARGS[@]}" --torch "$tmp/torch.json" "${EXTRA[@]}"
