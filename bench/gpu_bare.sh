#!/usr/bin/env bash
# The workloads' GPU paths without Docker: for a GPU host (or a lent GPU machine) that has the
# frameworks installed but no engine. Runs the CNN one epoch on a generated Fashion-MNIST-shaped
# sample with 1 replica and with every GPU (data-parallel), for each framework that imports here,
# and prints img/s, the device and the data-parallel mechanism the result JSON reports.
#
#   bash bench/gpu_bare.sh                 # PY=python3, MODEL=cnn, BATCH=64 per GPU
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
MODEL=${MODEL:-cnn}
BATCH=${BATCH:-64}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
echo "GPUs: $gpus"
$PY -c "from workloads.datasets.idx import write_sample; write_sample('$work/data', n_train=60000, n_test=10000, seed=0)"

declare -A MODULES=([pytorch]=torch [jax]="jax keras" [tensorflow]=tensorflow [mxnet]=mxnet [keras-mxnet]="keras mxnet")
failed=0
for framework in pytorch jax tensorflow mxnet keras-mxnet; do
  imports=$(printf 'import %s;' ${MODULES[$framework]})
  if ! $PY -c "$imports" 2>/dev/null; then
    echo "$framework: not installed here, skipped"
    continue
  fi
  for replicas in $(printf '%s\n' 1 "$gpus" | sort -nu); do
    [ "$replicas" -ge 1 ] || continue
    out="$work/$framework-$replicas.json"
    env=()
    [ "$framework" = jax ] && env=(KERAS_BACKEND=jax)
    [ "$framework" = keras-mxnet ] && env=(KERAS_BACKEND=mxnet)
    if env "${env[@]}" $PY -m workloads run --framework "$framework" --model "$MODEL" --dataset fashion_mnist \
      --data-dir "$work/data" --batch-size "$BATCH" --replicas "$replicas" --out "$out" >"$work/log" 2>&1; then
      $PY - "$out" <<'PYTHON'
import json, sys
r = json.load(open(sys.argv[1]))
parallel = [n for n in r["notes"] if "replica" in n or "Parallel" in n or "Mirrored" in n or "multi_gpu" in n]
print(f"{r['framework']:12} {r['device']} x{r['replicas']} global batch {r['global_batch_size']:5}: "
      f"{r['train_img_per_s']:10,.1f} img/s, peak device memory {r['peak_device_memory_mb']} MB; {'; '.join(parallel[:1])}")
PYTHON
    else
      echo "!! $framework x$replicas failed:"; tail -5 "$work/log"; failed=1
    fi
  done
done
exit "$failed"
