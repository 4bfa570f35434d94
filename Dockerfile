# ernstfall: api + worker + scheduler in one image (Node 24 LTS).
# The worker talks to a Docker engine (mount /var/run/docker.sock or set DOCKER_HOST)
# and reads backups from the folders in ERNSTFALL_BACKUP_ROOTS (mount them read-only,
# at the same path as on the host, so the engine can bind-mount them into sandboxes).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY services services
COPY workers workers
COPY db db
COPY deploy deploy
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:24-bookworm-slim
# zstd: plain dumps compressed with zstd are scanned on the worker host
RUN apt-get update && apt-get install -y --no-install-recommends zstd tar ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 ERNSTFALL_PLANS_DIR=/app/restore-plans ERNSTFALL_STATE_DIR=/var/lib/ernstfall
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# the web interface's two static files (tsc copies no CSS/JS)
COPY services/web/assets dist/services/web/assets
COPY package.json ./
COPY restore-plans restore-plans
COPY assets assets
USER node
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# migrations first: docker run … node dist/db/migrate.js (needs DATABASE_OWNER_URL)
CMD ["node", "dist/services/main.js"]
