#!/bin/sh
# The container image's entrypoint (installed as /usr/local/bin/ernstfall; docs/deployment.md).
#
#   serve [ROLE…]          the service (default): ERNSTFALL_ROLES or the given roles (api, worker, scheduler).
#                          A process with the api role first makes sure the evidence signing key exists
#                          (created once in the state folder unless ERNSTFALL_SIGNING_KEY_FILE names a
#                          mounted one) and, without ERNSTFALL_SECRET_KEY(_FILE), a secret key in
#                          $ERNSTFALL_STATE_DIR/secrets/secret-key.
#   migrate                the migrations, as the owner role (DATABASE_OWNER_URL or DATABASE_OWNER_URL_FILE,
#                          and DATABASE_URL or DATABASE_URL_FILE for the app role's name); a one-shot
#   keys init|rotate|show  the evidence signing key (npm run keys)
#   backup [--dir D]       ernstfall's own backup by hand (npm run backup)
#   plans-check [DIR]      validate plan files (npm run plans:check)
#   evidence-verify …      verify an evidence bundle offline (npm run evidence:verify)
#   anything else          run as given (e.g. sh)
set -eu
cd /app
STATE=${ERNSTFALL_STATE_DIR:-/var/lib/ernstfall}

die() { echo "ernstfall: $*" >&2; exit 1; }

# NAME from NAME_FILE for the tools that read only NAME (the service itself reads NAME_FILE)
from_file() {
  for name in "$@"; do
    eval "file=\${${name}_FILE:-}; value=\${${name}:-}"
    if [ -z "$value" ] && [ -n "$file" ]; then
      [ -r "$file" ] || die "${name}_FILE: cannot read $file (as uid $(id -u))"
      value=$(cat "$file")
      export "$name=$value"
    fi
  done
}

has_api() {
  if [ $# -gt 0 ]; then roles=$*; else roles=$(echo "${ERNSTFALL_ROLES:-api,worker,scheduler}" | tr ',' ' '); fi
  for r in $roles; do [ "$r" = api ] && return 0; done
  return 1
}

prepare_api() {
  [ -w "$STATE" ] || die "the state folder $STATE is not writable by uid $(id -u): mount a volume there, or chown a bind-mounted folder to 10001"
  umask 077
  mkdir -p "$STATE/secrets"
  if [ -z "${ERNSTFALL_SECRET_KEY:-}" ] && [ -z "${ERNSTFALL_SECRET_KEY_FILE:-}" ]; then
    if [ ! -s "$STATE/secrets/secret-key" ]; then
      node -e 'process.stdout.write(require("crypto").randomBytes(48).toString("base64url"))' >"$STATE/secrets/secret-key.tmp"
      mv "$STATE/secrets/secret-key.tmp" "$STATE/secrets/secret-key"
      echo "ernstfall: created the secret key $STATE/secrets/secret-key (back it up: docs/operations.md)"
    fi
    export ERNSTFALL_SECRET_KEY_FILE="$STATE/secrets/secret-key"
  fi
  # created once, never overwritten; a mounted key is only read (and its public key published)
  node dist/services/evidence/keys-cli.js init
  umask 022
}

cmd=${1:-serve}
[ $# -gt 0 ] && shift
case $cmd in
  serve)
    if has_api "$@"; then prepare_api; fi
    exec node dist/services/main.js "$@"
    ;;
  migrate)
    from_file DATABASE_OWNER_URL DATABASE_URL
    exec node dist/db/migrate.js "$@"
    ;;
  keys) exec node dist/services/evidence/keys-cli.js "$@" ;;
  backup) exec node dist/services/ops/backup-cli.js "$@" ;;
  plans-check) exec node dist/services/plans/check-plans.js "$@" ;;
  evidence-verify) exec node dist/services/evidence/verify-cli.js "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
