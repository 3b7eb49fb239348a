#!/bin/sh
# First start: create the cluster with the user, password and database from the environment (the
# compose env file), in a scratch directory moved into place only when complete; every start: run
# the server in the foreground. Data lives in the named volume mounted at /var/lib/benchmatrix/postgres.
set -eu
: "${BENCHMATRIX_DB_USER:?set BENCHMATRIX_DB_USER in the env file}"
: "${BENCHMATRIX_DB_PASSWORD:?set BENCHMATRIX_DB_PASSWORD in the env file}"
: "${BENCHMATRIX_DB_NAME:?set BENCHMATRIX_DB_NAME in the env file}"
volume=/var/lib/benchmatrix/postgres
data="$volume/data"

if [ ! -s "$data/PG_VERSION" ]; then
  scratch="$volume/.init"
  rm -rf "$scratch"
  pwfile="$(mktemp)"
  printf '%s\n' "$BENCHMATRIX_DB_PASSWORD" > "$pwfile"
  initdb -D "$scratch" --username="$BENCHMATRIX_DB_USER" --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >> "$scratch/postgresql.conf"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$scratch/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >> "$scratch/pg_hba.conf"
  pg_ctl -D "$scratch" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
  PGPASSWORD="$BENCHMATRIX_DB_PASSWORD" createdb -h /tmp -U "$BENCHMATRIX_DB_USER" -- "$BENCHMATRIX_DB_NAME"
  pg_ctl -D "$scratch" -m fast -w stop >/dev/null
  mv "$scratch" "$data"
  echo "benchmatrix-store: created database $BENCHMATRIX_DB_NAME for $BENCHMATRIX_DB_USER"
fi
exec postgres -D "$data" -k /tmp
