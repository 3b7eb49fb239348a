#!/usr/bin/env bash
# GPU smoke test: what a person runs on a GPU host to check 1_gpu and 4_gpu end to end.
#
#   bash bench/gpu_smoke.sh                      # all five frameworks, mlp + cnn
#   FRAMEWORKS="pytorch@2.13.0" bash bench/gpu_smoke.sh
#
# Needs: the NVIDIA driver (nvidia-smi), Docker with the NVIDIA Container Toolkit, `make install`
# done, the base images (`make bases`) or a registry for the gpu images' bases. Prints each step's
# figures: GPUs seen, the device requests and global batch sizes planned, img/s and GPU
# utilisation/memory/power per cell (from the host-side NVML sampler), and which cells failed.
# 4_gpu is skipped with a message on a host with fewer than 4 GPUs; its cells train data-parallel
# (`--replicas 4`, one replica per GPU). Exit 1 when any step failed. Without Docker, the workload
# code alone can be checked on the GPUs with bench/gpu_bare.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data}
STORE=${STORE:-results/gpu_smoke.db}
FRAMEWORKS=${FRAMEWORKS:-tensorflow@2.21.0 pytorch@2.13.0 mxnet@1.9.1 keras-mxnet@2.2.4.3 jax@0.10.2}
failed=0

step() { printf '\n== %s\n' "$*"; }
check() { "$@" || { echo "!! failed ($?): $*"; failed=1; }; }
framework_args() { for f in $FRAMEWORKS; do printf -- '--framework %s ' "$f"; done; }

step "GPUs and driver (nvidia-smi), then doctor for 1_gpu"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv || { echo "no NVIDIA driver here"; exit 1; }
gpus=$(nvidia-smi --list-gpus | wc -l)
$PY -m orchestrator doctor --system 1_gpu || exit 1

step "a device request reaches a container (the toolkit mounts nvidia-smi with the 'utility' capability)"
check docker run --rm --network none --gpus '"device=0"' benchmatrix/base:bookworm nvidia-smi -L

step "dataset and GPU images"
check $PY -m orchestrator data fetch fashion_mnist --dir "$DATA/fashion_mnist" --or-sample 60000
# shellcheck disable=SC2046
check $PY -m orchestrator images build --variant gpu $(framework_args)

step "plan: device requests and global batch = per-GPU batch x GPUs"
# shellcheck disable=SC2046
check $PY -m orchestrator plan --system 1_gpu $(framework_args)
# shellcheck disable=SC2046
check $PY -m orchestrator plan --system 4_gpu $(framework_args)

summary() {
  $PY -m orchestrator results --store "$STORE" --run "$1"
  $PY -m orchestrator results --store "$STORE" --run "$1" --format json | $PY -c '
import json, sys
keys = ("train_img_per_s", "gpu_util_pct_mean", "gpu_util_pct_max", "gpu_mem_used_mb_max", "gpu_power_w_mean")
for row in json.load(sys.stdin):
    figures = "  ".join(f"{key}={row[key]:.1f}" for key in keys if row.get(key) is not None)
    status, framework, workload, batch = row["status"], row["framework"], row["workload"], row["batch_size"]
    print(f"{status:9} {framework:12} {workload:5} bs{batch:<4} {figures}")'
}

for system in 1_gpu 4_gpu; do
  need=${system%_gpu}
  if [ "$gpus" -lt "$need" ]; then
    step "$system: skipped, this host has $gpus GPU(s)"
    continue
  fi
  step "$system: run (hardened cells with a device request each), then its table and NVML figures"
  # shellcheck disable=SC2046
  check $PY -m orchestrator run --system "$system" --data-dir "$DATA" --store "$STORE" $(framework_args)
  summary last
done

if [ "$gpus" -ge 2 ]; then
  step "--pack: 1-GPU cells side by side on disjoint GPUs (notes say which GPUs each had)"
  check $PY -m orchestrator run --system 1_gpu --pack --repeats "$gpus" --framework pytorch@2.13.0 \
    --workload mlp --data-dir "$DATA" --store "$STORE"
  summary last
fi

step "done"
[ "$failed" -eq 0 ] && echo "every step passed" || echo "some steps failed (see '!! failed' above)"
exit "$failed"
