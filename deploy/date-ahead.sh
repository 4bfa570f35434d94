#!/usr/bin/env bash
# npm run test:date-ahead: the unit and integration tiers with the clock of this
# process tree a year ahead (Debian's faketime), so a test or a product path that
# mixes its clock with the database's, or hard-codes "now", fails
# (docs/decisions/018-one-clock.md). PostgreSQL, Redis and Docker keep the real
# time: a year of skew between application and database must break nothing but
# the leases that are the database's own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# libfaketime preloaded directly and without shared memory (not through the `faketime` wrapper: its semaphore a child running as
# another user, e.g. `runuser -u postgres psql`, may not open); the monotonic clock stays real for timers
LIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
[[ -n $LIB ]] || { echo "test:date-ahead needs libfaketime (apt-get install faketime; npm run setup installs it)" >&2; exit 2; }
AHEAD=${ERNSTFALL_DATE_AHEAD:-+365d}
# Left out: files whose tests restore real backups in sandboxes and whose fixtures do not yet write them by the
# tests' clock. A backup's time comes from the kernel (its file time), from pg_dump or a container (the dump's
# header), from restic or from the source data, and faketime moves none of them: a fresh backup would rightly be a
# year old there. tests/fixtures/test-clock.ts moves such times by the measured skew (docs/decisions/023-test-hygiene.md);
# a file leaves this list once it passes both a year ahead and normally. What the rest check about time runs in the
# normal suite; this list may only shrink.
RESTORES=(
  # not yet run both ways with their fixtures on the tests' clock
  container-image files-indicators hostile-dumps restore-failures sandbox-policy
  # the backup is the product's own: services/ops/self-backup.ts runs pg_dump with a minimal environment (no
  # libfaketime), so its header and file keep the real time; no fixture to move, and the product is not bent for it
  self-backup
  # the backup's time is the WAL archive's newest commit, which the fixture's real PostgreSQL cluster wrote on real
  # time (pg_waldump reads it from the WAL; docs/decisions/020-pitr.md): a year ahead it is rightly a year old
  pitr
  # and like the browser tier, the one integration file that drives Chromium (it hung under the preloaded library)
  security-headers
)
# named positively: vitest's --exclude does not reach the projects' own include lists
files=(tests/unit/)
for f in tests/integration/*.test.ts; do
  n=$(basename "$f" .test.ts)
  [[ " ${RESTORES[*]} " == *" $n "* ]] || files+=("$f")
done
export LD_PRELOAD=$LIB FAKETIME=$AHEAD DONT_FAKE_MONOTONIC=1 FAKETIME_DISABLE_SHM=1
echo "test:date-ahead: the tests' clock is $(date -u +%Y-%m-%dT%H:%M:%SZ) (real: $(LD_PRELOAD= date -u +%Y-%m-%dT%H:%M:%SZ))"
if (($#)); then files=("$@"); fi # a narrower choice from the command line
# libfaketime 0.9.10 leaves a semaphore and a shared-memory file per process in /dev/shm; remove this run's
clean() { find /dev/shm -maxdepth 1 \( -name 'sem.faketime_sem_*' -o -name 'faketime_shm_*' \) -newer "$mark" -delete 2>/dev/null || true; rm -f "$mark"; }
mark=$(LD_PRELOAD= mktemp) && trap clean EXIT
npx vitest run --project unit --project integration "${files[@]}"
