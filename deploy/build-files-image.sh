#!/usr/bin/env bash
# Builds the offline sandbox image for file backups without any container
# registry: debootstrap a minimal Debian from the configured apt mirror,
# install the unpacking and repository tools from Debian's packages, then
# `docker import` the folder.
#
#   deploy/build-files-image.sh SUITE [TAG]
#   deploy/build-files-image.sh bookworm          # TAG: ernstfall/sandbox-files:bookworm
#
# What it holds: tar, gzip, zstd, xz-utils, bzip2, unzip (archives), restic
# and borgbackup (repositories), python3 (ernstfall's inventory script, put in
# at run time), and a user `ernstfall` (no login, no sudo) who owns the data
# area /srv/ef. Sandboxes run everything as that user, with no capabilities.
#
# Env: ERNSTFALL_DEBIAN_MIRROR, ERNSTFALL_DEBIAN_SECURITY, TMPDIR: see lib/debian-rootfs.sh
set -euo pipefail

usage() { echo "usage: $0 SUITE [TAG]   e.g. $0 bookworm" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
SUITE=$1
[[ $SUITE =~ ^[a-z]+$ ]] || usage
TAG=${2:-ernstfall/sandbox-files:$SUITE}
# the image's layout as the files driver expects it; setup rebuilds images with another
LAYOUT=1
# shellcheck source=deploy/lib/debian-rootfs.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/debian-rootfs.sh"

# --- 1. minimal Debian ---------------------------------------------------------
rootfs_create "$SUITE" files

# --- 2. the tools ----------------------------------------------------------------
PACKAGES=(tar gzip zstd xz-utils bzip2 unzip restic borgbackup python3-minimal coreutils findutils)
quiet in_root apt-get -q update
quiet in_root apt-get -q -y install "${PACKAGES[@]}"
# shellcheck disable=SC2016
versions=$(in_root dpkg-query -W -f='${Package}=${Version} ' restic borgbackup tar zstd unzip python3-minimal)
lap "install (${versions% })"
in_root useradd --system --uid 990 --user-group --home-dir /srv/ef --no-create-home --shell /usr/sbin/nologin ernstfall
in_root install -d -o ernstfall -g ernstfall -m 0750 /srv/ef

# --- 3. shrink -------------------------------------------------------------------
rootfs_shrink
lap "shrink ($(du -sh --one-file-system "$ROOT" | cut -f1))"

# --- 4. import -------------------------------------------------------------------
restic_v=$(in_root dpkg-query -W -f='${Version}' restic)
borg_v=$(in_root dpkg-query -W -f='${Version}' borgbackup)
rootfs_import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.ernstfall.image-kind=files" \
  --change "LABEL org.ernstfall.image-layout=$LAYOUT" \
  --change "LABEL org.ernstfall.restic-version=$restic_v" \
  --change "LABEL org.ernstfall.borg-version=$borg_v" \
  --change "LABEL org.ernstfall.debian-suite=$SUITE" \
  --change 'LABEL org.ernstfall.built-by=build-files-image' \
  --change 'CMD ["sleep","infinity"]' \
  --message "ernstfall sandbox: files (restic $restic_v, borg $borg_v) on Debian $SUITE"

# --- 5. verify -------------------------------------------------------------------
# As the sandboxes run it: no network, no capabilities, the unprivileged user.
out=$(docker run --rm --network none --cap-drop ALL --user ernstfall "$IMAGE_ID" \
  sh -c 'id -un && restic version && borg --version && tar --version | head -n1 && zstd --version && unzip -v | head -n1 && python3 --version && test -w /srv/ef')
printf '%s\n' "$out" | sed 's/^/  /'
grep -qx ernstfall <<<"$out" || { echo "error: the image's user is not ernstfall" >&2; exit 1; }
grep -q '^restic ' <<<"$out" || { echo "error: restic does not run in $TAG" >&2; exit 1; }
grep -q '^borg ' <<<"$out" || { echo "error: borg does not run in $TAG" >&2; exit 1; }
rootfs_tag "restic $restic_v, borg $borg_v"
