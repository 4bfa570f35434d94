#!/usr/bin/env bash
# Builds the base image of ernstfall's own container image without any
# container registry: debootstrap a minimal Debian bookworm from the apt
# mirror this host uses, add what the service runs besides Node.js (CA
# certificates, zstd, tar, pg_dump for the self-backup, tini as PID 1), then
# the Node.js binary and npm as published on the npm registry (packages
# `node-linux-<arch>` and `npm`), each checked against the registry's own
# integrity hash (dist.integrity, sha512) before it goes in, and
# `docker import` the folder.
#
#   deploy/build-node-base.sh [TAG]          # TAG: ernstfall/node-base:24
#
# Env: ERNSTFALL_NODE_MAJOR     Node.js major (default 24): the newest 24.x on the registry
#      ERNSTFALL_NPM_MAJOR      npm major (default 11, the one Node 24 ships with)
#      ERNSTFALL_DEBIAN_MIRROR, ERNSTFALL_DEBIAN_SECURITY, TMPDIR: see lib/debian-rootfs.sh
# Needs root, debootstrap, docker and npm (the registry, directly or through
# the npm proxy configured for npm on this host).
set -euo pipefail

usage() { echo "usage: $0 [TAG]   (default ernstfall/node-base:\${ERNSTFALL_NODE_MAJOR:-24})" >&2; exit 2; }
[[ $# -le 1 ]] || usage
NODE_MAJOR=${ERNSTFALL_NODE_MAJOR:-24}
NPM_MAJOR=${ERNSTFALL_NPM_MAJOR:-11}
[[ $NODE_MAJOR =~ ^[0-9]+$ && $NPM_MAJOR =~ ^[0-9]+$ ]] || { echo "error: ERNSTFALL_NODE_MAJOR and ERNSTFALL_NPM_MAJOR must be numbers" >&2; exit 2; }
TAG=${1:-ernstfall/node-base:$NODE_MAJOR}
SUITE=bookworm
command -v npm >/dev/null || { echo "error: npm not found: it fetches Node.js from the npm registry" >&2; exit 1; }
command -v node >/dev/null || { echo "error: node not found (it comes with npm)" >&2; exit 1; }
case $(dpkg --print-architecture 2>/dev/null || uname -m) in
  amd64 | x86_64) NODE_ARCH=x64 ;;
  arm64 | aarch64) NODE_ARCH=arm64 ;;
  *) echo "error: no Node.js package on the npm registry for this architecture" >&2; exit 1 ;;
esac
# shellcheck source=deploy/lib/debian-rootfs.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/debian-rootfs.sh"

# --- 1. Node.js and npm from the npm registry, checked against its integrity hash ----------------
PACKS=$(mktemp -d "${TMPDIR:-/var/tmp}/ernstfall-node-packs.XXXXXX")
# keeps the exit status for rootfs_cleanup, which reports it
trap 'rc=$?; rm -rf "$PACKS"; (exit "$rc"); rootfs_cleanup' EXIT
fetch_verified() { # SPEC -> prints the tarball's path; fails unless its sha512 is the registry's dist.integrity
  local spec=$1 json name version file want got
  json=$(cd "$PACKS" && npm pack "$spec" --json --silent) || { echo "error: npm pack $spec failed" >&2; return 1; }
  read -r name version file < <(node -e 'const [p] = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(p.name, p.version, p.filename)' <<<"$json")
  # the registry's word for this exact version, asked separately from the download
  want=$(npm view "$name@$version" dist.integrity --silent)
  got=sha512-$(node -e 'const h = require("crypto").createHash("sha512"); require("fs").createReadStream(process.argv[1]).on("data", (d) => h.update(d)).on("end", () => console.log(h.digest("base64")))' "$PACKS/$file")
  if [[ -z $want || $want != "$got" ]]; then
    echo "error: $name@$version: the tarball's sha512 ($got) is not the registry's dist.integrity (${want:-none})" >&2
    return 1
  fi
  log "$name@$version: integrity $got matches the registry" >&2
  echo "$PACKS/$file $version"
}
read -r NODE_TGZ NODE_VERSION < <(fetch_verified "node-linux-$NODE_ARCH@$NODE_MAJOR")
read -r NPM_TGZ NPM_VERSION < <(fetch_verified "npm@$NPM_MAJOR")
[[ -n ${NODE_TGZ:-} && -n ${NPM_TGZ:-} ]] || exit 1
lap "npm registry (node $NODE_VERSION, npm $NPM_VERSION)"

# --- 2. minimal Debian with what the service needs besides Node.js ---------------------------------
rootfs_create "$SUITE" node-base
# ca-certificates: SMTP, webhooks, OIDC over TLS; zstd/tar: dumps scanned on the worker;
# postgresql-client-15: pg_dump for ernstfall's self-backup; tini: signals and zombies as PID 1
PACKAGES=(ca-certificates zstd tar postgresql-client-15 tini)
quiet in_root apt-get -q update
quiet in_root apt-get -q -y install "${PACKAGES[@]}"
# shellcheck disable=SC2016
versions=$(in_root dpkg-query -W -f='${Package}=${Version} ' postgresql-client-15 zstd tini)
lap "install (${versions% })"

# --- 3. Node.js and npm into /usr/local ------------------------------------------------------------
install -d "$ROOT/usr/local/bin" "$ROOT/usr/local/lib/node_modules/npm" "$ROOT/usr/local/share/doc/node"
tar -xzf "$NODE_TGZ" -C "$ROOT/usr/local/bin" --strip-components=2 package/bin/node
tar -xzf "$NODE_TGZ" -C "$ROOT/usr/local/share/doc/node" --strip-components=1 package/LICENSE
chown 0:0 "$ROOT/usr/local/bin/node" && chmod 755 "$ROOT/usr/local/bin/node"
tar -xzf "$NPM_TGZ" -C "$ROOT/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
# the Node.js binary must run in this root (its libstdc++ and glibc), not only on the host
got=$(in_root /usr/local/bin/node --version)
[[ $got == "v$NODE_VERSION" ]] || { echo "error: node in the root says $got, expected v$NODE_VERSION" >&2; exit 1; }
lap "node $got, npm $NPM_VERSION"

# --- 4. shrink, import ------------------------------------------------------------------------------
rootfs_shrink
lap "shrink ($(du -sh --one-file-system "$ROOT" | cut -f1))"
pg_v=$(in_root dpkg-query -W -f='${Version}' postgresql-client-15)
rootfs_import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.ernstfall.image-kind=node-base" \
  --change "LABEL org.ernstfall.node-version=$NODE_VERSION" \
  --change "LABEL org.ernstfall.npm-version=$NPM_VERSION" \
  --change "LABEL org.ernstfall.pg-client-version=$pg_v" \
  --change "LABEL org.ernstfall.debian-suite=$SUITE" \
  --change 'LABEL org.ernstfall.built-by=build-node-base' \
  --change 'CMD ["node"]' \
  --message "ernstfall base: Node.js $NODE_VERSION, npm $NPM_VERSION on Debian $SUITE"

# --- 5. verify ---------------------------------------------------------------------------------------
out=$(docker run --rm --network none --cap-drop ALL --user 65534:65534 "$IMAGE_ID" \
  sh -c 'node -e "console.log(process.version)" && npm --version && pg_dump --version && zstd --version && tini --version')
log "verify: $(tr '\n' ' ' <<<"$out")"
grep -qx "v$NODE_VERSION" <<<"$out" || { echo "error: the image's node is not v$NODE_VERSION" >&2; exit 1; }
grep -qx "$NPM_VERSION" <<<"$out" || { echo "error: the image's npm is not $NPM_VERSION" >&2; exit 1; }
rootfs_tag "node $NODE_VERSION, npm $NPM_VERSION"
