# ernstfall: api, worker and scheduler in one image, built without any registry.
#
#   npm ci                                   # node_modules on the host (the build has no registry)
#   bash deploy/build-node-base.sh           # once: ernstfall/node-base:24 (Debian bookworm + Node 24 from the npm registry)
#   docker build -t ernstfall:latest .       # or: --build-arg BASE=<another base with node and npm>
#
# Run (docs/deployment.md): migrations first, as a one-shot with the owner role,
#   docker run --rm -e DATABASE_OWNER_URL_FILE=… -e DATABASE_URL_FILE=… ernstfall migrate
# then the service (`serve`, the default; `serve api`, `serve worker`, `serve scheduler` for one role).
# The worker talks to a Docker engine (mount /var/run/docker.sock and add its group, or set DOCKER_HOST)
# and reads backups from the folders in ERNSTFALL_BACKUP_ROOTS (mount them read-only, at the same path
# as on the host). Plans: mount your folder at /app/restore-plans (the image has none).
ARG BASE=ernstfall/node-base:24

FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# installed on the host by `npm ci` (no registry is reached from inside the build)
COPY node_modules node_modules
COPY tsconfig.json tsconfig.build.json ./
COPY services services
COPY workers workers
COPY db db
COPY deploy deploy
# then what tsc does not copy: the web interface's CSS/JS and the files driver's inventory script
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/.cache \
 && cp -r services/web/assets dist/services/web/assets \
 && cp workers/drivers/files/inventory.py dist/workers/drivers/files/inventory.py
# marks this stage's image (legacy builds keep it untagged) so a build can remove it again
ARG BUILD_ID=
LABEL org.ernstfall.build-id=${BUILD_ID}

FROM ${BASE}
# the service user (fixed ids: give secret files and bind-mounted state to 10001);
# it owns the state folder (signing key, trusted keys, checkpoints) and nothing of the app
RUN groupadd --gid 10001 ernstfall \
 && useradd --uid 10001 --gid ernstfall --home-dir /var/lib/ernstfall --no-create-home --shell /usr/sbin/nologin ernstfall \
 && install -d -o ernstfall -g ernstfall -m 0750 /var/lib/ernstfall \
 && install -d -m 0755 /app /app/restore-plans
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 \
    ERNSTFALL_PLANS_DIR=/app/restore-plans ERNSTFALL_STATE_DIR=/var/lib/ernstfall
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY assets assets
COPY deploy/docker-entrypoint.sh /usr/local/bin/ernstfall
VOLUME /var/lib/ernstfall
USER ernstfall
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["tini", "--", "ernstfall"]
CMD ["serve"]
