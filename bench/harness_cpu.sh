#!/usr/bin/env bash
# bench/harness.py on CPU, in each framework's image (hardened like a cell: no network, uid 1000,
# read-only code), for the MLP and the CNN: harness ÷ bare per framework and input placement.
# Pinned to one CPU (CPUSET, default 1), leaving the other to the engine: on this 2-vCPU VM an
# unpinned cell's speed is bimodal (e.g. 1,163 or 1,997 img/s for the same TF CNN).
#   bash bench/harness_cpu.sh [extra harness.py arguments]
# SCRIPT runs another bench script the same way (SCRIPT=bench.pixels); FRAMEWORKS and MODELS narrow the loop.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A IMAGES=(
  [pytorch]=benchmatrix/pytorch:2.13.0-cpu [mxnet]=benchmatrix/mxnet:1.9.1-cpu
  [tensorflow]=benchmatrix/tensorflow:2.21.0-cpu [jax]=benchmatrix/jax:0.10.2-cpu
  [keras-mxnet]=benchmatrix/keras-mxnet:2.2.4.3-cpu
)
for framework in ${FRAMEWORKS:-pytorch mxnet tensorflow jax keras-mxnet}; do
  for model in ${MODELS:-mlp cnn}; do
    samples=30000; [ "$model" = cnn ] && samples=3000
    docker run --rm --network none --user 1000:1000 --read-only --tmpfs /tmp:rw,exec,size=2g \
      --cpuset-cpus "${CPUSET:-1}" \
      -v "$PWD:/opt/benchmatrix:ro" -w /opt/benchmatrix -e PYTHONPATH=/opt/benchmatrix -e HOME=/tmp \
      "${IMAGES[$framework]}" python3 -m "${SCRIPT:-bench.harness}" --framework "$framework" --model "$model" \
      --samples "$samples" "$@" 2>/dev/null | { [ -z "${header:-}" ] && cat || tail -n +2; }
    header=shown
  done
done
