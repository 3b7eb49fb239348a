#!/usr/bin/env bash
# What `make test` needs beyond Python, so that it passes on a fresh Debian machine by itself:
#   slurm-wlm + munge   the Slurm tests start a real single-node cluster (scripts/slurm-local.sh)
#   docker-compose      the Compose test brings up docker-compose.yml
#   postgresql          the store tests start a PostgreSQL server of their own
#   a Docker engine     scripts/ensure-engine.sh (docker.io, debootstrap, dockerd), as `make matrix` does
# As root, installs what is missing (Debian packages) and starts the engine. Not root, installs
# nothing and says which tests will be skipped (each test says why); the exit status is 0 either way.
#
#   scripts/ensure-test-deps.sh [--dry-run]   --dry-run: print what would be done, change nothing
# BENCHMATRIX_PG_ROOT (default /usr/lib/postgresql) is where PostgreSQL's versioned bin/ folders are.
set -euo pipefail

here=${0%/*}
dry_run=false
[ "${1:-}" = --dry-run ] && dry_run=true
pg_root=${BENCHMATRIX_PG_ROOT:-/usr/lib/postgresql}

have() { command -v "$1" >/dev/null 2>&1; }

need=()
{ have slurmctld && have slurmd && have sinfo; } || need+=(slurm-wlm)
{ have munged && have munge; } || need+=(munge)
have docker-compose || need+=(docker-compose)
compgen -G "$pg_root/*/bin/initdb" >/dev/null || need+=(postgresql)

if [ "$(id -u)" != 0 ]; then
  if [ ${#need[@]} -gt 0 ]; then
    echo "ensure-test-deps: not root, so ${need[*]} cannot be installed here: the tests that need them are skipped, each with its reason"
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "ensure-test-deps: no Docker engine answers and this is not root: the engine tests are skipped"
  fi
  exit 0
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-test-deps: installing ${need[*]}"
  if ! $dry_run && ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    echo "ensure-test-deps: apt-get could not install ${need[*]}: the tests that need them are skipped, each with its reason" >&2
  fi
fi
if $dry_run; then
  echo "ensure-test-deps: then $here/ensure-engine.sh"
else
  bash "$here/ensure-engine.sh"
fi
