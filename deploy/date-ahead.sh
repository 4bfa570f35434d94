#!/usr/bin/env bash
# npm run test:date-ahead: the unit and integration tiers with the clock of this
# process tree a year ahead (Debian's faketime), so a test or a product path that
# mixes its clock with the database's, or hard-codes "now", fails
# (docs/decisions/018-one-clock.md). PostgreSQL, Redis and Docker keep the real
# time: a year of skew between application and database must break nothing but
# the leases that are the database's own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v faketime >/dev/null || { echo "test:date-ahead needs faketime (apt-get install faketime; npm run setup installs it)" >&2; exit 2; }
AHEAD=${ERNSTFALL_DATE_AHEAD:-+365d}
echo "test:date-ahead: the tests' clock is $(faketime -f "$AHEAD" date -u +%Y-%m-%dT%H:%M:%SZ) (real: $(date -u +%Y-%m-%dT%H:%M:%SZ))"
exec faketime -f "$AHEAD" npx vitest run --project unit --project integration "$@"
