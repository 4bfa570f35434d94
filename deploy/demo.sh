#!/usr/bin/env bash
# npm run demo: set-up if needed, then one real restore test end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
  bash deploy/setup.sh
elif [ ! -f "${ERNSTFALL_STATE_DIR:-.ernstfall}/env" ]; then
  echo "demo: no set-up found; run 'npm run setup' as root on Debian first (see README)" >&2
  exit 1
fi
[ -d node_modules ] || npm ci
exec npx tsx deploy/demo.ts "$@"
