#!/usr/bin/env bash
# Installs ernstfall's systemd units (deploy/systemd/) for this checkout, so a
# reboot brings everything back: `npm run setup -- --systemd` calls it after
# the set-up (which wrote the state folder's env, owner.env and secrets).
#
#   deploy/install-systemd.sh                   install, create the user, enable (and start, if systemd runs)
#   deploy/install-systemd.sh --permissions     only re-apply the state folder's owners and modes
#   deploy/install-systemd.sh --render DIR      only write the units with their paths filled in into DIR
#
# What it does (as root):
#   1. the system user and group `ernstfall` (no login, no home of its own)
#   2. the state folder: root:ernstfall 0750; env root:ernstfall 0640 (the service
#      reads it); owner.env and the database passwords stay root-only; the signing
#      key, secret key, bootstrap token, keys/ and checkpoints/ belong to ernstfall
#   3. the units ernstfall-{migrate,api,worker,scheduler}.service into
#      /etc/systemd/system, with this checkout, the state folder and node filled in,
#      checked with `systemd-analyze verify` where it exists
#   4. enables them and PostgreSQL, Redis and Docker (their own Debian units);
#      with systemd running: daemon-reload, migrations, then the three processes
#
# Env: ERNSTFALL_STATE_DIR (default <repo>/.ernstfall), ERNSTFALL_SYSTEMD_DIR
# (default /etc/systemd/system).
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${ERNSTFALL_STATE_DIR:-$REPO/.ernstfall}
UNIT_DIR=${ERNSTFALL_SYSTEMD_DIR:-/etc/systemd/system}
UNITS=(ernstfall-migrate ernstfall-api ernstfall-worker ernstfall-scheduler)
say() { printf '  %s\n' "$*"; }
die() { printf 'install-systemd: error: %s\n' "$*" >&2; exit 1; }

render() { # DIR: the units with @HOME@, @STATE@, @NODE@ filled in
  local out=$1 node u
  node=$(command -v node) || die "node not found (Node.js >= 20.11)"
  node=$(readlink -f "$node")
  case $REPO$STATE$node in *[!A-Za-z0-9._/+@:-]*) die "paths with spaces or special characters cannot go into unit files: $REPO, $STATE, $node" ;; esac
  install -d "$out"
  for u in "${UNITS[@]}"; do
    sed -e "s|@HOME@|$REPO|g" -e "s|@STATE@|$STATE|g" -e "s|@NODE@|$node|g" "$REPO/deploy/systemd/$u.service" >"$out/$u.service.tmp"
    # no local Docker engine's group (remote DOCKER_HOST): nothing to add
    getent group docker >/dev/null || sed -i '/^SupplementaryGroups=docker$/d' "$out/$u.service.tmp"
    mv "$out/$u.service.tmp" "$out/$u.service"
  done
}

permissions() {
  [[ -d $STATE && -f $STATE/env ]] || die "no set-up in $STATE: run npm run setup first"
  chown root:ernstfall "$STATE" && chmod 0750 "$STATE"
  chown root:ernstfall "$STATE/env" && chmod 0640 "$STATE/env"
  [[ ! -f $STATE/owner.env ]] || { chown root:root "$STATE/owner.env" && chmod 0600 "$STATE/owner.env"; }
  install -d -o ernstfall -g ernstfall -m 0700 "$STATE/secrets"
  local f
  for f in bootstrap-token secret-key signing-key.pem; do
    [[ ! -e $STATE/secrets/$f ]] || { chown ernstfall:ernstfall "$STATE/secrets/$f" && chmod 0600 "$STATE/secrets/$f"; }
  done
  for f in db-owner-password db-app-password; do
    [[ ! -e $STATE/secrets/$f ]] || { chown root:root "$STATE/secrets/$f" && chmod 0600 "$STATE/secrets/$f"; }
  done
  for f in keys checkpoints; do
    install -d -o ernstfall -g ernstfall -m 0750 "$STATE/$f"
    chown -R ernstfall:ernstfall "$STATE/$f"
  done
  # the default tenant's backup root: readable by the worker
  [[ ! -d $STATE/backups ]] || chgrp ernstfall "$STATE/backups"
}

case ${1:-} in
  --render)
    [[ $# == 2 ]] || die "usage: $0 --render DIR"
    render "$2"
    exit 0 ;;
  --permissions)
    [[ $(id -u) == 0 ]] || die "must run as root"
    getent passwd ernstfall >/dev/null || die "no user ernstfall: run $0 without arguments first"
    permissions
    say "state folder permissions for the ernstfall user re-applied ($STATE)"
    exit 0 ;;
  '') ;;
  *) die "usage: $0 [--permissions | --render DIR]" ;;
esac

[[ $(id -u) == 0 ]] || die "must run as root (it creates a user and installs units)"
[[ -d $REPO/node_modules/tsx ]] || die "node_modules missing in $REPO: run npm run setup first"

# --- 1. user ----------------------------------------------------------------------------
if getent passwd ernstfall >/dev/null; then
  say "user ernstfall present"
else
  useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ernstfall
  say "created system user ernstfall"
fi

# --- 2. state folder ----------------------------------------------------------------------
permissions
say "state folder $STATE: ernstfall may read env and its secrets; owner.env and the database passwords stay root's"
# the units run the checkout as ernstfall: it must be able to read it (not write it)
if ! runuser -u ernstfall -- test -r "$REPO/services/main.ts" -a -x "$REPO/node_modules"; then
  die "user ernstfall cannot read $REPO (a folder above it is closed): put the checkout somewhere like /opt/ernstfall"
fi

# --- 3. units -------------------------------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
render "$tmp"
if command -v systemd-analyze >/dev/null; then
  (cd "$tmp" && systemd-analyze verify "${UNITS[@]/%/.service}") || die "systemd-analyze verify found problems in the units (above)"
fi
install -d "$UNIT_DIR"
changed=0
for u in "${UNITS[@]}"; do
  if cmp -s "$tmp/$u.service" "$UNIT_DIR/$u.service"; then continue; fi
  install -m 0644 "$tmp/$u.service" "$UNIT_DIR/$u.service"
  changed=1
done
((changed)) && say "installed units ${UNITS[*]} into $UNIT_DIR" || say "units unchanged in $UNIT_DIR"

# --- 4. enable (and start) ---------------------------------------------------------------------
deps=()
for d in postgresql redis-server docker; do
  [[ -f /lib/systemd/system/$d.service || -f /usr/lib/systemd/system/$d.service || -f $UNIT_DIR/$d.service ]] && deps+=("$d.service")
done
if [[ $UNIT_DIR != /etc/systemd/system ]]; then
  say "units written to $UNIT_DIR (ERNSTFALL_SYSTEMD_DIR): not enabled, nothing started"
elif [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable "${deps[@]}" "${UNITS[@]/%/.service}" 2>&1 | sed 's/^/  /'
  # migrations first (the three Require= it and are restarted after it), then the processes
  systemctl restart ernstfall-migrate.service
  systemctl start ernstfall-api.service ernstfall-worker.service ernstfall-scheduler.service
  say "enabled and started: ${UNITS[*]} (systemctl status 'ernstfall-*')"
else
  # no running systemd (a container, a chroot): link them for the next boot, start nothing
  systemctl enable --root=/ "${deps[@]}" "${UNITS[@]/%/.service}" 2>&1 | sed 's/^/  /' || die "systemctl enable failed"
  say "systemd is not running here (PID 1 is $(ps -o comm= -p 1 2>/dev/null || echo unknown)): units enabled for the next boot, nothing started"
fi
