#!/usr/bin/env bash
# Builds an offline PostgreSQL sandbox image without any container registry:
# debootstrap a minimal Debian from the configured apt mirror, install
# postgresql-MAJOR (no default cluster), then `docker import` the folder.
#
#   deploy/build-sandbox-image.sh MAJOR SUITE [TAG]
#   deploy/build-sandbox-image.sh 15 bookworm
#   deploy/build-sandbox-image.sh 17 trixie ernstfall/sandbox-postgres:17
#
# Env: ERNSTFALL_DEBIAN_MIRROR   Debian archive URL (default: the one apt uses)
#      ERNSTFALL_DEBIAN_SECURITY security archive URL (default: the one apt
#                                uses; "none" = no security/updates suites)
#      ERNSTFALL_IMAGE_LOCALES   locales to generate (default "de_DE.UTF-8
#                                en_US.UTF-8": dumps from German systems name
#                                them in collations; "" = only C.UTF-8)
#      ERNSTFALL_IMAGE_KEEP_JIT=1 keep LLVM (JIT); removed by default: a third
#                                of the image, of no use to a restore test
#      TMPDIR                    where the temporary root folder goes (/var/tmp)
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
[[ $(id -u) == 0 ]] || { echo "error: must run as root (debootstrap and chroot need it)" >&2; exit 1; }
for tool in debootstrap docker tar; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install debootstrap docker.io)" >&2; exit 1; }
done

log() { printf '[build %s] %s\n' "$TAG" "$*"; }
T0=$SECONDS T=$SECONDS
lap() { log "$1: $((SECONDS - T))s"; T=$SECONDS; }

# --- mirrors: whatever apt on this host is configured with --------------------
# `apt-cache policy` normalises both sources.list formats; its "release" line
# tells the main archive (l=Debian, no -suffix suite) from the security one.
apt_uri() { # $1 = Debian | Debian-Security
  apt-cache policy 2>/dev/null | awk -v want="$1" '
    $1 ~ /^[0-9]+$/ && $2 ~ /^[a-z]+:\/\// { uri = $2; suite = $3; next }
    /^ *release / && uri != "" {
      if (index($0, ",l=" want ",") && (want != "Debian" || suite !~ /-/)) { print uri; exit }
      uri = ""
    }'
}
sources_uri() { # fallback when apt has no lists yet: first URI in the source files
  local pat=$1
  { grep -hE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{for (i = 2; i <= NF; i++) print $i}'
    grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -E 's/\[[^]]*\]//' | awk '{print $2}'
  } | grep -E "$pat" | head -n1 || true
}
MIRROR=${ERNSTFALL_DEBIAN_MIRROR:-$(apt_uri Debian)}
MIRROR=${MIRROR:-$(sources_uri '/debian/?$')}
[[ -n $MIRROR ]] || { echo "error: no Debian mirror configured in /etc/apt/sources.list*; set ERNSTFALL_DEBIAN_MIRROR" >&2; exit 1; }
SECURITY=${ERNSTFALL_DEBIAN_SECURITY:-$(apt_uri Debian-Security)}
SECURITY=${SECURITY:-$(sources_uri '/debian-security/?$')}
[[ $SECURITY == none ]] && SECURITY=

# Older debootstraps may not know a newer suite; every Debian suite uses the
# same script as sid.
SCRIPT_ARG=()
DEBOOTSTRAP_SCRIPTS=${DEBOOTSTRAP_DIR:-/usr/share/debootstrap}/scripts
if [[ ! -e $DEBOOTSTRAP_SCRIPTS/$SUITE ]]; then
  log "debootstrap has no script for $SUITE, using sid's"
  SCRIPT_ARG=("$DEBOOTSTRAP_SCRIPTS/sid")
fi

# --- temporary root folder, removed on every exit -----------------------------
ROOT=$(mktemp -d "${TMPDIR:-/var/tmp}/ernstfall-rootfs-$MAJOR.XXXXXX")
STEPLOG=$ROOT.log
# mktemp makes it 0700, and the tar's "./" entry carries that into the image:
# overlay2 ignores it, vfs applies it and then no non-root user can run anything.
chmod 755 "$ROOT"
cleanup() {
  local rc=$? m
  set +e
  # Never rm -rf through a mount into the host (proc, or anything left over).
  if command -v findmnt >/dev/null; then
    for m in $(findmnt -rn -o TARGET | grep -F "$ROOT/" | sort -r); do umount -l "$m"; done
  fi
  rm -rf --one-file-system "$ROOT"
  rm -f "$STEPLOG"
  [[ -z ${IMAGE_ID:-} ]] || docker rmi "$IMAGE_ID" >/dev/null 2>&1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "mirror $MIRROR${SECURITY:+, security $SECURITY}, suite $SUITE, root $ROOT"

# --- 1. minimal Debian ---------------------------------------------------------
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" "${SCRIPT_ARG[@]}" >"$STEPLOG" 2>&1 || {
  tail -n 40 "$STEPLOG" >&2; exit 1; }
lap "debootstrap"

# --- 2. postgresql-MAJOR without the default cluster ---------------------------
{
  echo "deb $MIRROR $SUITE main"
  echo "deb $MIRROR $SUITE-updates main"
  [[ -n $SECURITY ]] && echo "deb $SECURITY $SUITE-security main"
} >"$ROOT/etc/apt/sources.list"
# Keep documentation and translations out (licences stay); messages are read
# with LC_MESSAGES=C anyway.
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-ernstfall-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
# A throw-away folder needs no fsync per file (removed again before import).
echo force-unsafe-io >"$ROOT/etc/dpkg/dpkg.cfg.d/00-ernstfall-unsafe-io"
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
cat >"$ROOT/etc/apt/apt.conf.d/01-ernstfall" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
# No daemons inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mkdir -p "$ROOT/etc/postgresql-common/createcluster.d"
echo 'create_main_cluster = false' >"$ROOT/etc/postgresql-common/createcluster.d/00-ernstfall.conf"

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"; }
quiet() { "$@" >"$STEPLOG" 2>&1 || { tail -n 40 "$STEPLOG" >&2; return 1; }; }
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
in_root apt-get -q clean
rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT/etc/dpkg/dpkg.cfg.d/00-ernstfall-unsafe-io"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/debconf/*-old \
  "$ROOT"/var/lib/dpkg/*-old "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/usr/share/locale/* "$ROOT"/usr/share/lintian/* "$ROOT"/tmp/* "$ROOT"/var/tmp/*
find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
find "$ROOT/var/log" -type f -delete
# Host details debootstrap copied in; Docker provides its own.
: >"$ROOT/etc/resolv.conf"
: >"$ROOT/etc/hostname"
rm -f "$ROOT/etc/machine-id" "$ROOT/var/lib/dbus/machine-id"
in_root install -d -o postgres -g postgres -m 2775 /var/run/postgresql
in_root chown postgres:postgres /var/lib/postgresql
lap "shrink ($(du -sh --one-file-system "$ROOT" | cut -f1))"

# --- 4. import -------------------------------------------------------------------
# Imported untagged and tagged only once verified: a failed rebuild leaves the
# previous image under TAG.
IMAGE_ID=$(tar --numeric-owner -C "$ROOT" -c . | docker import \
  --change "ENV PATH=/usr/lib/postgresql/$MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.ernstfall.pg-major=$MAJOR" \
  --change "LABEL org.ernstfall.pg-version=$PG_VERSION" \
  --change "LABEL org.ernstfall.debian-suite=$SUITE" \
  --change 'LABEL org.ernstfall.built-by=build-sandbox-image' \
  --change 'CMD ["sleep","infinity"]' \
  --message "ernstfall sandbox: postgresql-$MAJOR $PG_VERSION on Debian $SUITE" \
  -)
lap "docker import"

# --- 5. template cluster ----------------------------------------------------------
# A cluster initialised here, once, instead of in every sandbox: Docker copies
# /var/lib/postgresql into each sandbox's own data area when it is created, so
# a restore test starts its server without initdb. Made by PostgreSQL itself
# as postgres, in a container without network, then committed as a layer.
cid=$(docker create --network none --cap-drop ALL --user postgres "$IMAGE_ID" \
  initdb --no-sync -D /var/lib/postgresql/ef-data -U postgres --auth=trust -E UTF8 --locale=C)
docker start -a "$cid" >"$STEPLOG" 2>&1 || { tail -n 40 "$STEPLOG" >&2; docker rm -f "$cid" >/dev/null; exit 1; }
BASE_ID=$IMAGE_ID
IMAGE_ID=$(docker commit --change "LABEL org.ernstfall.image-layout=$LAYOUT" --change 'USER root' --change 'CMD ["sleep","infinity"]' "$cid")
docker rm -f "$cid" >/dev/null
docker rmi "$BASE_ID" >/dev/null 2>&1 || true
lap "template cluster"

# --- 6. verify -------------------------------------------------------------------
# As the sandboxes run it: no network, no capabilities, user postgres.
out=$(docker run --rm --network none --cap-drop ALL --user postgres "$IMAGE_ID" \
  sh -c 'initdb --version && pg_restore --version && psql --version && zstd --version && test -w /var/lib/postgresql && test -s /var/lib/postgresql/ef-data/PG_VERSION')
printf '%s\n' "$out" | sed 's/^/  /'
for tool in initdb pg_restore psql; do
  grep -qE "^$tool \(PostgreSQL\) $MAJOR\." <<<"$out" || { echo "error: $tool in $TAG is not PostgreSQL $MAJOR" >&2; exit 1; }
done
docker tag "$IMAGE_ID" "$TAG"
IMAGE_ID=""
lap "verify"

size=$(docker image inspect -f '{{.Size}}' "$TAG")
log "built $TAG (PostgreSQL $PG_VERSION, $((size / 1000000)) MB) in $((SECONDS - T0))s"
