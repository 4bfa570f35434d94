#!/usr/bin/env bash
# Creates the secret files compose.yaml mounts (once; an existing file is never
# overwritten), as random values:
#
#   deploy/compose/make-secrets.sh [DIR]     # default: secrets/ beside this script
#
# postgres-password (the server's superuser), db-owner-password and
# db-app-password (the two roles postgres-init/ creates), database-url and
# database-owner-url (the same passwords, as the services read them),
# secret-key (encrypts second-factor secrets; back it up), bootstrap-token
# (the first admin's token; remove it from compose.yaml once real users
# exist), metrics-token (GET /metrics).
#
# The folder is 0700 (only its owner on the host gets in); the files are 0444,
# because Compose bind-mounts them into containers whose users (postgres,
# ernstfall uid 10001) differ from the host's.
set -euo pipefail
DIR=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets}
DB_HOST=${ERNSTFALL_DB_HOST:-postgres}
install -d -m 700 "$DIR"
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
put() { # NAME VALUE: written only if missing
  local f=$DIR/$1
  if [[ -s $f ]]; then echo "  present $f"; return; fi
  (umask 077 && printf '%s\n' "$2" >"$f.tmp")
  chmod 444 "$f.tmp" && mv "$f.tmp" "$f"
  echo "  created $f"
}
put postgres-password "$(rand 24)"
put db-owner-password "$(rand 24)"
put db-app-password "$(rand 24)"
owner_pw=$(<"$DIR/db-owner-password") app_pw=$(<"$DIR/db-app-password")
put database-url "postgres://ernstfall_app:$app_pw@$DB_HOST:5432/ernstfall"
put database-owner-url "postgres://ernstfall_owner:$owner_pw@$DB_HOST:5432/ernstfall"
put secret-key "$(rand 48)"
put bootstrap-token "$(rand 32)"
put metrics-token "$(rand 32)"
