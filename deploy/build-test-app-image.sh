#!/usr/bin/env bash
# Builds ernstfall's test application image (application groups, decisions/021) offline:
# `docker build` FROM the local ernstfall/node-base:24 (deploy/build-node-base.sh), never a pull.
# Idempotent: an image built from the same files (their hash is a label) is kept.
#
#   deploy/build-test-app-image.sh [TAG]     # TAG: ernstfall/test-app:1
set -euo pipefail
TAG=${1:-ernstfall/test-app:1}
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/fixtures/test-app" && pwd)
BASE=ernstfall/node-base:24
docker image inspect "$BASE" >/dev/null 2>&1 || { echo "error: $BASE is missing; build it first (deploy/build-node-base.sh, or npm run setup)" >&2; exit 1; }
HASH=$(cd "$DIR" && cat Dockerfile server.mjs | sha256sum | cut -c1-16)
BASE_ID=$(docker image inspect -f '{{.Id}}' "$BASE")
have=$(docker image inspect -f '{{ index .Config.Labels "org.ernstfall.test-app" }}' "$TAG" 2>/dev/null || true)
if [[ $have == "$HASH-${BASE_ID:7:12}" ]]; then
  echo "image $TAG present"
  exit 0
fi
# the classic builder takes FROM from the local image store; --pull=false: never ask a registry
DOCKER_BUILDKIT=0 docker build --quiet --pull=false --label "org.ernstfall.test-app=$HASH-${BASE_ID:7:12}" -t "$TAG" "$DIR" >/dev/null
echo "built image $TAG"
