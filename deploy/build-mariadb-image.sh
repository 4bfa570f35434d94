#!/usr/bin/env bash
# Builds the offline MariaDB sandbox image without any container registry:
# debootstrap a minimal Debian from the configured apt mirror, install
# mariadb-server from Debian's packages, `docker import` the folder, then
# initialise a template data directory as the mysql user (like the
# PostgreSQL images' template cluster), so no sandbox runs
# mariadb-install-db.
#
#   deploy/build-mariadb-image.sh SUITE [TAG]
#   deploy/build-mariadb-image.sh bookworm        # MariaDB 10.11, TAG ernstfall/sandbox-mariadb:10.11
#   deploy/build-mariadb-image.sh trixie          # MariaDB 11.8,  TAG ernstfall/sandbox-mariadb:11.8
#
# Accounts in the template: root@localhost and mysql@localhost, both
# unix_socket only; sandboxes connect as the OS user mysql over the socket.
# No network account exists and the server runs with --skip-networking.
#
# Env: ERNSTFALL_DEBIAN_MIRROR, ERNSTFALL_DEBIAN_SECURITY, TMPDIR: see lib/debian-rootfs.sh
set -euo pipefail

usage() { echo "usage: $0 SUITE [TAG]   e.g. $0 bookworm" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
SUITE=$1
[[ $SUITE =~ ^[a-z]+$ ]] || usage
TAG=${2:-}
LAYOUT=1
# a provisional name for the log until the version is known
[[ -n $TAG ]] || TAG="ernstfall/sandbox-mariadb:$SUITE"
# shellcheck source=deploy/lib/debian-rootfs.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/debian-rootfs.sh"

# --- 1. minimal Debian ---------------------------------------------------------
rootfs_create "$SUITE" mariadb

# --- 2. mariadb-server -----------------------------------------------------------
quiet in_root apt-get -q update
quiet in_root apt-get -q -y install mariadb-server mariadb-client gzip zstd coreutils
# shellcheck disable=SC2016
VERSION=$(in_root dpkg-query -W -f='${Version}' mariadb-server)
UPSTREAM=${VERSION#*:}
MINOR=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$UPSTREAM")
[[ $# -eq 2 ]] || TAG="ernstfall/sandbox-mariadb:$MINOR"
# a tag that names a version must name this one (setup asks for 11.8 from trixie: a suite that moved on says so here)
if [[ $TAG =~ :([0-9]+\.[0-9]+)$ && ${BASH_REMATCH[1]} != "$MINOR" ]]; then
  echo "error: $SUITE has MariaDB $MINOR, not ${BASH_REMATCH[1]} as the tag $TAG says" >&2
  exit 1
fi
lap "install mariadb-server $VERSION"
# the package's own data directory is not the template: it is made again below, as mysql, in a container
rm -rf "$ROOT/var/lib/mysql" && install -d -m 0750 "$ROOT/var/lib/mysql"
in_root chown mysql:mysql /var/lib/mysql
in_root install -d -o mysql -g mysql -m 0755 /run/mysqld

# --- 3. shrink -------------------------------------------------------------------
rootfs_shrink
rm -rf "$ROOT/usr/share/mysql/mysql-test" "$ROOT/usr/lib/mysql/plugin/ha_rocksdb.so" 2>/dev/null || true
lap "shrink ($(du -sh --one-file-system "$ROOT" | cut -f1))"

# --- 4. import -------------------------------------------------------------------
rootfs_import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.ernstfall.mariadb-version=$UPSTREAM" \
  --change "LABEL org.ernstfall.debian-suite=$SUITE" \
  --change 'LABEL org.ernstfall.built-by=build-mariadb-image' \
  --change 'CMD ["sleep","infinity"]' \
  --message "ernstfall sandbox: mariadb-server $VERSION on Debian $SUITE"

# --- 5. template data directory --------------------------------------------------
rootfs_template mysql "template data directory" \
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve

# --- 6. verify -------------------------------------------------------------------
# As the sandboxes run it: no network, no capabilities, user mysql, the server without networking.
out=$(docker run --rm --network none --cap-drop ALL --user mysql --tmpfs /tmp "$IMAGE_ID" sh -c '
  mariadbd --datadir=/var/lib/mysql --socket=/tmp/mysqld.sock --pid-file=/tmp/mysqld.pid --skip-networking --skip-log-bin >/tmp/err.log 2>&1 &
  for i in $(seq 1 100); do mariadb-admin --socket=/tmp/mysqld.sock -u mysql ping >/dev/null 2>&1 && break; sleep 0.1; done
  mariadb --socket=/tmp/mysqld.sock -u mysql -N -B -e "select version(), current_user()" || cat /tmp/err.log
  mariadb-admin --socket=/tmp/mysqld.sock -u mysql shutdown')
printf '  %s\n' "$out"
grep -q "^$MINOR.*mysql@localhost" <<<"$out" || { echo "error: the server in $TAG did not answer as MariaDB $MINOR to mysql@localhost" >&2; exit 1; }
rootfs_tag "mariadb-server $VERSION"
