# Shared by the offline image builders (build-sandbox-image.sh,
# build-files-image.sh): a minimal Debian root folder made with debootstrap
# from the apt mirror this host uses, packages installed into it with apt,
# shrunk, and imported with `docker import`. No registry, no pull.
#
# Source it after setting TAG; then:
#   rootfs_create SUITE NAME    debootstrap into $ROOT (removed on exit)
#   quiet in_root apt-get …     run in the root folder, output only on failure
#   rootfs_shrink               drop apt lists, docs, logs, host details
#   rootfs_import --change …    docker import into $IMAGE_ID (removed on exit unless IMAGE_ID is cleared)
#   rootfs_template USER STEP ARGV…  run ARGV as USER in a container of $IMAGE_ID (no
#                               network, no capabilities) and commit the result as the image
#   rootfs_tag WHAT             tag the verified $IMAGE_ID as $TAG and log the size
#   lap "step"                  log the step's seconds
#
# Env: ERNSTFALL_DEBIAN_MIRROR   Debian archive URL (default: the one apt uses)
#      ERNSTFALL_DEBIAN_SECURITY security archive URL (default: the one apt
#                                uses; "none" = no security/updates suites)
#      TMPDIR                    where the temporary root folder goes (/var/tmp)

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

ROOT="" STEPLOG="" IMAGE_ID=""
rootfs_cleanup() {
  local rc=$? m
  set +e
  if [[ -n $ROOT ]]; then
    # Never rm -rf through a mount into the host (proc, or anything left over).
    if command -v findmnt >/dev/null; then
      for m in $(findmnt -rn -o TARGET | grep -F "$ROOT/" | sort -r); do umount -l "$m"; done
    fi
    rm -rf --one-file-system "$ROOT"
    rm -f "$STEPLOG"
  fi
  [[ -z ${IMAGE_ID:-} ]] || docker rmi "$IMAGE_ID" >/dev/null 2>&1
  exit "$rc"
}
trap rootfs_cleanup EXIT
trap 'exit 130' INT TERM

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"; }
quiet() { "$@" >"$STEPLOG" 2>&1 || { tail -n 40 "$STEPLOG" >&2; return 1; }; }

rootfs_create() { # SUITE NAME
  local suite=$1 name=$2 script_arg=()
  # Older debootstraps may not know a newer suite; every Debian suite uses the same script as sid.
  local scripts=${DEBOOTSTRAP_DIR:-/usr/share/debootstrap}/scripts
  if [[ ! -e $scripts/$suite ]]; then
    log "debootstrap has no script for $suite, using sid's"
    script_arg=("$scripts/sid")
  fi
  ROOT=$(mktemp -d "${TMPDIR:-/var/tmp}/ernstfall-rootfs-$name.XXXXXX")
  STEPLOG=$ROOT.log
  # mktemp makes it 0700, and the tar's "./" entry carries that into the image:
  # overlay2 ignores it, vfs applies it and then no non-root user can run anything.
  chmod 755 "$ROOT"
  log "mirror $MIRROR${SECURITY:+, security $SECURITY}, suite $suite, root $ROOT"
  debootstrap --variant=minbase "$suite" "$ROOT" "$MIRROR" "${script_arg[@]}" >"$STEPLOG" 2>&1 || {
    tail -n 40 "$STEPLOG" >&2; exit 1; }
  {
    echo "deb $MIRROR $suite main"
    echo "deb $MIRROR $suite-updates main"
    [[ -n $SECURITY ]] && echo "deb $SECURITY $suite-security main"
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
  cat >"$ROOT/etc/apt/apt.conf.d/01-ernstfall" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
  # No daemons inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  lap "debootstrap"
}

rootfs_shrink() {
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
}

rootfs_import() { # --change … (docker import's), then --message TEXT
  # Imported untagged and tagged only once verified: a failed rebuild leaves the previous image under TAG.
  IMAGE_ID=$(tar --numeric-owner -C "$ROOT" -c . | docker import "$@" -)
  lap "docker import"
}

rootfs_template() { # USER STEP ARGV…: a data directory made by the server's own tool, committed as a layer
  local user=$1 step=$2 cid base
  shift 2
  cid=$(docker create --network none --cap-drop ALL --user "$user" "$IMAGE_ID" "$@")
  docker start -a "$cid" >"$STEPLOG" 2>&1 || { tail -n 40 "$STEPLOG" >&2; docker rm -f "$cid" >/dev/null; exit 1; }
  base=$IMAGE_ID
  IMAGE_ID=$(docker commit --change "LABEL org.ernstfall.image-layout=$LAYOUT" --change 'USER root' --change 'CMD ["sleep","infinity"]' "$cid")
  docker rm -f "$cid" >/dev/null
  docker rmi "$base" >/dev/null 2>&1 || true
  lap "$step"
}

rootfs_tag() { # WHAT: the verified image gets its tag; until here a failed rebuild left the previous one under TAG
  local size
  docker tag "$IMAGE_ID" "$TAG"
  IMAGE_ID=""
  lap "verify"
  size=$(docker image inspect -f '{{.Size}}' "$TAG")
  log "built $TAG ($1, $((size / 1000000)) MB) in $((SECONDS - T0))s"
}
