#!/usr/bin/env bash
# The restore test an administrator would type by hand, as the baseline for
# `npm run bench` (tests/bench/restore.bench.ts): start a throw-away PostgreSQL
# container with the dump mounted read-only, restore it, count one table,
# remove the container. Prints the count (and nothing else) on stdout.
#
#   deploy/bench-by-hand.sh DUMP [TABLE]
#   deploy/bench-by-hand.sh .ernstfall/backups/bench/pgbench-s20.dump
#
# What a careful administrator types: the dump mounted read-only, no network,
# `pg_restore -j` with one job per core (the archive format allows it), one
# count to see the data is there, the container removed. Server settings are
# the image's defaults: a person restoring by hand does not usually turn off
# durability. The server runs as `postgres` (setpriv), its socket in /tmp.
# Env: IMAGE  sandbox image (default ernstfall/sandbox-postgres:15)
set -euo pipefail

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 DUMP [TABLE]" >&2; exit 2; }
DUMP=$(realpath "$1")
TABLE=${2:-pgbench_accounts}
IMAGE=${IMAGE:-ernstfall/sandbox-postgres:15}
[[ -r $DUMP ]] || { echo "error: cannot read $DUMP" >&2; exit 2; }

cid=$(docker run -d --network none -v "$DUMP":/backup.dump:ro "$IMAGE" sh -c '
  AS_PG="setpriv --reuid=postgres --regid=postgres --clear-groups"
  $AS_PG initdb -D /var/lib/postgresql/data -U postgres --auth=trust -E UTF8 >/dev/null
  exec $AS_PG postgres -D /var/lib/postgresql/data -k /tmp')
trap 'docker rm -f "$cid" >/dev/null' EXIT

until docker exec -u postgres "$cid" pg_isready -q -h /tmp; do
  [[ $(docker inspect -f '{{.State.Running}}' "$cid") == true ]] || { docker logs "$cid" >&2; exit 1; }
  sleep 0.2
done
docker exec -u postgres "$cid" createdb -h /tmp bench
docker exec -u postgres "$cid" pg_restore -h /tmp -j "$(nproc)" -d bench /backup.dump
docker exec -u postgres "$cid" psql -h /tmp -d bench -Atc "select count(*) from $TABLE"
