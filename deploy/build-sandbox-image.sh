#!/usr/bin/env bash
# Builds an offline PostgreSQL sandbox image without any container registry:
# debootstrap a minimal Debian from the configured apt mirror, install
# postgresql-MAJOR (no default cluster), then `docker import` the folder.
#
#   deploy/build-sandbox-image.sh MAJOR SUITE [TAG]
#   deploy/build-sandbox-image.sh 15 bookworm
#   deploy/build-sandbox-image.sh 17 trixie ernstfall/sandbox-postgres:17
#
# Env: ERNSTFALL_DEBIAN_MIRROR, ERNSTFALL_DEBIAN_SECURITY, TMPDIR: see lib/debian-rootfs.sh
#      ERNSTFALL_IMAGE_LOCALES   locales to generate (default "de_DE.UTF-8
#                                en_US.UTF-8": dumps from German systems name
#                                them in collations; "" = only C.UTF-8)
#      ERNSTFALL_IMAGE_KEEP_JIT=1 keep LLVM (JIT); removed by default: a third
#                                of the image, of no use to a restore test
set -euo pipefail

usage() { echo "usage: $0 MAJOR SUITE [TAG]   e.g. $0 15 bookworm" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
MAJOR=$1 SUITE=$2
# the image's layout as the engine expects it (2: a template cluster in /var/lib/postgresql/ef-data); setup rebuilds older ones
LAYOUT=2
TAG=${3:-ernstfall/sandbox-postgres:$MAJOR}
LOCALES=${ERNSTFALL_IMAGE_LOCALES-de_DE.UTF-8 en_US.UTF-8}
KEEP_JIT=${ERNSTFALL_IMAGE_KEEP_JIT:-0}
[[ $MAJOR =~ ^[0-9]+$ ]] || usage
[[ $SUITE =~ ^[a-z]+$ ]] || usage
# shellcheck source=deploy/lib/debian-rootfs.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/debian-rootfs.sh"

# --- 1. minimal Debian ---------------------------------------------------------
rootfs_create "$SUITE" "postgres-$MAJOR"

# --- 2. postgresql-MAJOR without the default cluster ---------------------------
if [[ $KEEP_JIT != 1 ]]; then
  # Without llvmjit.so PostgreSQL runs with JIT unavailable, silently. LLVM
  # (and z3, which only LLVM uses) stay installed for dpkg, so apt inside the
  # image remains consistent, but their files are not unpacked.
  cat >"$ROOT/etc/dpkg/dpkg.cfg.d/02-ernstfall-nojit" <<'EOF'
path-exclude /usr/lib/postgresql/*/lib/bitcode/*
path-exclude /usr/lib/postgresql/*/lib/llvmjit*
path-exclude /usr/lib/*/libLLVM*
path-exclude /usr/lib/llvm-*/lib/libLLVM*
path-exclude /usr/lib/*/libz3.so*
EOF
fi
mkdir -p "$ROOT/etc/postgresql-common/createcluster.d"
echo 'create_main_cluster = false' >"$ROOT/etc/postgresql-common/createcluster.d/00-ernstfall.conf"

quiet in_root apt-get -q update
quiet in_root apt-get -q -y install "postgresql-$MAJOR" zstd gzip tar coreutils
# Safety net in case a postgresql-common ignored the drop-in.
if [[ -d $ROOT/etc/postgresql/$MAJOR/main ]]; then
  log "dropping the default cluster"
  in_root pg_dropcluster --stop "$MAJOR" main
fi
[[ -x $ROOT/usr/lib/postgresql/$MAJOR/bin/initdb ]] || { echo "error: postgresql-$MAJOR installed no initdb" >&2; exit 1; }
in_root getent passwd postgres >/dev/null || { echo "error: no postgres user in the image" >&2; exit 1; }
# shellcheck disable=SC2016
PG_VERSION=$(in_root dpkg-query -W -f='${Version}' "postgresql-$MAJOR")
if [[ -n $LOCALES && -f $ROOT/etc/locale.gen ]]; then
  for l in $LOCALES; do echo "$l ${l#*.}"; done >"$ROOT/etc/locale.gen"
  quiet in_root locale-gen
fi
[[ $KEEP_JIT == 1 ]] || nojit="; without JIT"
lap "install postgresql-$MAJOR ($PG_VERSION${nojit:-}${LOCALES:+; locales $LOCALES})"

# --- 3. shrink -------------------------------------------------------------------
rootfs_shrink
in_root install -d -o postgres -g postgres -m 2775 /var/run/postgresql
in_root chown postgres:postgres /var/lib/postgresql
lap "shrink ($(du -sh --one-file-system "$ROOT" | cut -f1))"

# --- 4. import -------------------------------------------------------------------
rootfs_import \
  --change "ENV PATH=/usr/lib/postgresql/$MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.ernstfall.pg-major=$MAJOR" \
  --change "LABEL org.ernstfall.pg-version=$PG_VERSION" \
  --change "LABEL org.ernstfall.debian-suite=$SUITE" \
  --change 'LABEL org.ernstfall.built-by=build-sandbox-image' \
  --change 'CMD ["sleep","infinity"]' \
  --message "ernstfall sandbox: postgresql-$MAJOR $PG_VERSION on Debian $SUITE"

# --- 5. template cluster ----------------------------------------------------------
# A cluster initialised here, once, instead of in every sandbox: Docker copies
# /var/lib/postgresql into each sandbox's own data area when it is created, so
# a restore test starts its server without initdb. Made by PostgreSQL itself
# as postgres, in a container without network, then committed as a layer.
rootfs_template postgres "template cluster" \
  initdb --no-sync -D /var/lib/postgresql/ef-data -U postgres --auth=trust -E UTF8 --locale=C

# --- 6. verify -------------------------------------------------------------------
# As the sandboxes run it: no network, no capabilities, user postgres.
out=$(docker run --rm --network none --cap-drop ALL --user postgres "$IMAGE_ID" \
  sh -c 'initdb --version && pg_restore --version && psql --version && zstd --version && test -w /var/lib/postgresql && test -s /var/lib/postgresql/ef-data/PG_VERSION')
printf '%s\n' "$out" | sed 's/^/  /'
for tool in initdb pg_restore psql; do
  grep -qE "^$tool \(PostgreSQL\) $MAJOR\." <<<"$out" || { echo "error: $tool in $TAG is not PostgreSQL $MAJOR" >&2; exit 1; }
done
rootfs_tag "PostgreSQL $PG_VERSION"
