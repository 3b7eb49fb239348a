#!/usr/bin/env bash
# Air-gap rehearsal on one machine, with figures: `bundle save` framework images from the engine
# here, `bundle load` them into an EMPTY second Docker engine (its own data root, so every layer is
# really written), then run a cell on that engine with the cells' network off.
#
#   bash bench/bundle_airgap.sh                       # mxnet 1.9.1 (609 MB)
#   FRAMEWORKS="tensorflow@2.21.0 jax@0.10.2" bash bench/bundle_airgap.sh
#
# Prints the bundle size and save / verify+load seconds per GB (from the commands' own output).
# Needs root and dockerd; the second engine and everything it wrote are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
FRAMEWORKS=${FRAMEWORKS:-mxnet@1.9.1}
work=$(mktemp -d /tmp/bm-airgap.XXXXXX)
sock=$work/docker.sock

cleanup() {
  if [ -n "${engine:-}" ] && kill -0 "$engine" 2>/dev/null; then
    kill "$engine" && wait "$engine" || true
  fi
  findmnt -rn -o TARGET | grep "^$work/" | sort -r | xargs -r umount || true
  rm -rf "$work"
}
trap cleanup EXIT

dockerd --data-root "$work/engine" --exec-root "$work/exec" -H "unix://$sock" --pidfile "$work/docker.pid" \
  --bridge=none --iptables=false --ip-masq=false >"$work/dockerd.log" 2>&1 &
engine=$!
for _ in $(seq 60); do DOCKER_HOST=unix://$sock docker info >/dev/null 2>&1 && break; sleep 0.5; done
echo "empty engine at $sock: $(DOCKER_HOST=unix://$sock docker images -q | wc -l) images"

$PY -m orchestrator data sample fashion_mnist --dir "$work/online-data/fashion_mnist" --n 1200 >/dev/null
chmod -R o+rX "$work/online-data"
selected=()
for framework in $FRAMEWORKS; do selected+=(--framework "$framework"); done
echo "== bundle save (engine here)"
/usr/bin/time -f "bundle save: %e s wall" $PY -m orchestrator bundle save --out "$work/bundle" "${selected[@]}" \
  --with-datasets fashion_mnist --data-dir "$work/online-data"
du -sb "$work/bundle" | awk '{printf "bundle size: %.3f GB\n", $1 / 1e9}'

echo "== bundle load (empty engine: verify every checksum, then load)"
/usr/bin/time -f "bundle load: %e s wall (verify + load + place)" env DOCKER_HOST="unix://$sock" \
  $PY -m orchestrator bundle load "$work/bundle" --data-dir "$work/offline-data"

echo "== one cell per framework on the loaded engine (network none)"
if DOCKER_HOST=unix://$sock $PY -m orchestrator images list | awk '$2 == "cpu" && $3 != "current" {print $1}' \
  | grep -F -f <(for framework in $FRAMEWORKS; do echo "benchmatrix/${framework%@*}:${framework#*@}-"; done); then
  echo "skipped: these images were built from another images/catalog.yaml than this checkout's (run would rebuild)"
  exit 0
fi
{
  echo "name: airgap"
  echo "systems: {cpu: {kind: cpu, memory: 2g}}"
  echo "frameworks:"
  for framework in $FRAMEWORKS; do echo "  - {name: ${framework%@*}, version: \"${framework#*@}\"}"; done
  echo "workloads: [{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, warmup_steps: 5}]"
} >"$work/spec.yaml"
reference=${FRAMEWORKS%%@*}
DOCKER_HOST=unix://$sock $PY -m orchestrator run --system cpu --spec "$work/spec.yaml" --reference "$reference" \
  --data-dir "$work/offline-data" --results-dir "$work/results" --store "$work/results.db" | tail -n 12
