#!/usr/bin/env bash
# Idempotent local set-up for ernstfall on Debian (run as root; `npm run setup`):
# packages, PostgreSQL/Redis/Docker running, offline sandbox images, secrets,
# env file, database roles, node modules, migrations. Safe to run again: it
# only does what is missing and says what it did, one line per action.
#
# Env: ERNSTFALL_STATE_DIR   state folder (default <repo>/.ernstfall)
#      ERNSTFALL_SKIP_IMAGES=1  do not build the sandbox images
#      ERNSTFALL_PARALLEL_IMAGES=0|1  build missing images side by side (default 1)
#      DOCKER_HOST           use that engine; no local dockerd is started
# Args: --systemd            also install and enable the systemd units (deploy/install-systemd.sh)
set -Eeuo pipefail
SYSTEMD=0
for arg in "$@"; do
  case $arg in
    --systemd) SYSTEMD=1 ;;
    *) echo "usage: npm run setup [-- --systemd]" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${ERNSTFALL_STATE_DIR:-$REPO/.ernstfall}
T_START=$SECONDS
say() { printf '  %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "setup: failed (exit %s, %s line %s)%s\n" "$rc" "${BASH_SOURCE[0]##*/}" "$LINENO" "${LOG:+; details in $LOG}" >&2' ERR

# --- 0. preflight ---------------------------------------------------------------
manual_help() {
  cat >&2 <<'EOF'
Install these yourself, start them, then run `npm run setup` again as root
(on a non-Debian host follow "Manual set-up" in deploy/README.md instead):
  - PostgreSQL >= 15, listening on 127.0.0.1 with password (scram/md5) login
  - Redis >= 7 on 127.0.0.1:6379
  - Docker engine (dockerd running; `docker info` works)
  - debootstrap and zstd (offline sandbox images: deploy/build-sandbox-image.sh)
  - Node.js >= 20.11 with npm
EOF
}
if [[ ! -f /etc/debian_version ]]; then
  echo "setup: this is not a Debian system (no /etc/debian_version); the automatic set-up only knows apt." >&2
  manual_help; exit 1
fi
if [[ $(id -u) != 0 ]]; then
  echo "setup: must run as root (it installs packages and starts services): sudo npm run setup" >&2
  manual_help; exit 1
fi
case $STATE in *[!A-Za-z0-9._/+@:-]*) die "ERNSTFALL_STATE_DIR '$STATE' has characters the env file cannot carry unquoted" ;; esac
[[ -d $STATE ]] || install -d -m 750 "$STATE"
install -d -m 750 "$STATE/logs"
STATE=$(cd "$STATE" && pwd)
LOG=$STATE/logs/setup.log
printf '\n=== setup %s ===\n' "$(date -Is)" >>"$LOG"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
echo "ernstfall setup (state: $STATE)"

# --- 1. packages ------------------------------------------------------------------
installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }
have_pg_server() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }
missing=()
for pkg in postgresql redis-server docker.io debootstrap zstd zip xz-utils restic borgbackup poppler-utils fonts-dejavu-core ca-certificates faketime ${ERNSTFALL_SETUP_BROWSER-chromium}; do
  installed "$pkg" && continue
  case $pkg in # equivalents installed another way (PGDG, docker-ce, source) count
    postgresql) have_pg_server && continue ;;
    redis-server) command -v redis-server >/dev/null && continue ;;
    docker.io) command -v dockerd >/dev/null && continue ;;
  esac
  missing+=("$pkg")
done
if ((${#missing[@]})); then
  apt-get -q update >>"$LOG" 2>&1 || die "apt-get update failed; see $LOG"
  apt-get -q -y install --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 || die "apt-get install ${missing[*]} failed; see $LOG"
  say "installed ${missing[*]}"
else
  say "packages present"
fi

# --- 2. PostgreSQL ------------------------------------------------------------------
# pg_lsclusters -h: version cluster port status owner datadir logfile
pick_cluster() { pg_lsclusters -h 2>/dev/null | sort -k1,1n -k2,2r | awk '$2 == "main" { m = $0 } { a = $0 } END { print (m != "" ? m : a) }'; }
cl=$(pick_cluster)
if [[ -z $cl ]]; then
  PGVER=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null | awk -F/ '{print $5}' | sort -n | tail -n1)
  [[ -n $PGVER ]] || die "no PostgreSQL server installed"
  pg_createcluster "$PGVER" main >>"$LOG" 2>&1 || die "pg_createcluster $PGVER main failed; see $LOG"
  say "created PostgreSQL cluster $PGVER/main"
  cl=$(pick_cluster)
fi
read -r PGVER PGCLUSTER PGPORT PGSTATUS _ <<<"$cl"
((PGVER >= 15)) || die "PostgreSQL $PGVER/$PGCLUSTER is too old; ernstfall needs >= 15"
if [[ $PGSTATUS == online* ]]; then
  say "already running PostgreSQL $PGVER/$PGCLUSTER on port $PGPORT"
else
  pg_ctlcluster "$PGVER" "$PGCLUSTER" start >>"$LOG" 2>&1 || die "pg_ctlcluster $PGVER $PGCLUSTER start failed; see $LOG and /var/log/postgresql/"
  say "started PostgreSQL $PGVER/$PGCLUSTER on port $PGPORT"
fi
for _ in $(seq 30); do pg_isready -q -p "$PGPORT" && break; sleep 1; done
pg_isready -q -p "$PGPORT" || die "PostgreSQL $PGVER/$PGCLUSTER does not accept connections on port $PGPORT"

# --- 3. Redis -------------------------------------------------------------------------
redis_up() { [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]; }
redis_major=$(redis-server --version | sed -nE 's/.* v=([0-9]+)\..*/\1/p')
((${redis_major:-0} >= 7)) || die "Redis ${redis_major:-?} is too old; ernstfall needs >= 7"
if redis_up; then
  say "already running Redis on 127.0.0.1:6379"
else
  if [[ -f /etc/redis/redis.conf ]] && id redis >/dev/null 2>&1; then
    install -d -o redis -g redis -m 2755 /run/redis  # systemd would create it
    (cd / && runuser -u redis -- redis-server /etc/redis/redis.conf --daemonize yes --bind 127.0.0.1 --port 6379) >>"$LOG" 2>&1
  else
    install -d -m 700 "$STATE/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir "$STATE/redis" --logfile /var/log/ernstfall-redis.log >>"$LOG" 2>&1
  fi
  for _ in $(seq 20); do redis_up && break; sleep 0.5; done
  redis_up || die "Redis did not answer on 127.0.0.1:6379; see /var/log/redis/ or $LOG"
  say "started Redis on 127.0.0.1:6379"
fi

# --- 4. Docker ----------------------------------------------------------------------------
DOCKERD_LOG=/var/log/ernstfall-dockerd.log
docker_up() { docker info >/dev/null 2>&1; }
start_dockerd() { # [flags...]; waits up to 60 s
  if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then rm -f /var/run/docker.pid; fi
  DOCKERD_LOG_OFFSET=$(stat -c %s "$DOCKERD_LOG" 2>/dev/null || echo 0)
  setsid dockerd "$@" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  DOCKERD_PID=$!
  for _ in $(seq 60); do
    docker_up && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || return 1
    sleep 1
  done
  return 1
}
stop_our_dockerd() {
  kill "$DOCKERD_PID" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || return 0; sleep 1; done
  kill -9 "$DOCKERD_PID" 2>/dev/null || true
}
# Can the engine really run a container (overlay mounts can fail only then)?
# Uses a throw-away image made of the host's /bin/dash; nothing is pulled.
probe_docker() {
  local files rc=0
  files=$( { echo /bin/dash; ldd /bin/dash | grep -oE '/[^ ]+'; } | sed 's|^/||' | sort -u)
  # shellcheck disable=SC2086
  tar -ch -C / $files 2>/dev/null | docker import - ernstfall/setup-probe:latest >/dev/null || return 1
  docker run --rm --network none ernstfall/setup-probe:latest /bin/dash -c 'echo ok >/probe && read x </probe && [ "$x" = ok ]' >>"$LOG" 2>&1 || rc=1
  docker rmi -f ernstfall/setup-probe:latest >/dev/null 2>&1 || true
  return $rc
}
if docker_up; then
  say "already running Docker (storage driver $(docker info -f '{{.Driver}}'))"
elif [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != unix:///var/run/docker.sock ]]; then
  die "Docker at DOCKER_HOST=$DOCKER_HOST does not answer (docker info)"
else
  flags=()
  driver_note=""
  if grep -qs '"storage-driver"' /etc/docker/daemon.json; then
    ok=0; start_dockerd && probe_docker && ok=1  # the admin chose a driver; respect it
  else
    ok=0
    if start_dockerd && probe_docker; then
      ok=1
    else
      # overlay2 fails on some hosts (nested overlay, old kernels): vfs is slow
      # and big, but works everywhere.
      echo "dockerd with the default storage driver failed; retrying with vfs" >>"$LOG"
      tail -c +"$((DOCKERD_LOG_OFFSET + 1))" "$DOCKERD_LOG" | tail -n 20 >>"$LOG"
      stop_our_dockerd
      flags=(--storage-driver=vfs)
      driver_note=" (overlay2 failed, fell back to vfs)"
      start_dockerd "${flags[@]}" && probe_docker && ok=1
    fi
  fi
  ((ok)) || die "dockerd did not start or cannot run containers; see $DOCKERD_LOG"
  say "started dockerd${flags[*]:+ ${flags[*]}} (storage driver $(docker info -f '{{.Driver}}')$driver_note; log $DOCKERD_LOG)"
fi

# --- 5. state folder and secrets ------------------------------------------------------------
install -d -m 700 "$STATE/secrets"
chmod 700 "$STATE/secrets"
new_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
present=()
for name in db-owner-password db-app-password bootstrap-token secret-key; do
  f=$STATE/secrets/$name
  if [[ -s $f ]]; then
    present+=("$name")
  else
    (umask 077 && new_secret >"$f.tmp" && mv "$f.tmp" "$f")
    say "created secret $f"
  fi
  chmod 600 "$f"
done
((${#present[@]})) && say "secrets present: ${present[*]}"
if [[ ! -d $STATE/backups ]]; then
  install -d -m 750 "$STATE/backups"
  say "created backup root $STATE/backups"
fi
OWNER_PW=$(<"$STATE/secrets/db-owner-password")
APP_PW=$(<"$STATE/secrets/db-app-password")
[[ $OWNER_PW =~ ^[A-Za-z0-9._~-]+$ && $APP_PW =~ ^[A-Za-z0-9._~-]+$ ]] ||
  die "passwords in $STATE/secrets must be URL-safe ([A-Za-z0-9._~-]); delete the file to get a new one"

# --- 6. roles and database ---------------------------------------------------------------------
as_postgres() { (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PGPORT" "$@"); }
# Passwords go through stdin, never argv.
out=$(as_postgres -d postgres 2>>"$LOG" <<SQL
\set owner_pw '$OWNER_PW'
\set app_pw '$APP_PW'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ernstfall_owner') AS new_owner,
       NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ernstfall_app') AS new_app \gset
\if :new_owner
  CREATE ROLE ernstfall_owner LOGIN CREATEDB PASSWORD :'owner_pw';
  \echo created role ernstfall_owner
\else
  ALTER ROLE ernstfall_owner LOGIN CREATEDB;
\endif
\if :new_app
  CREATE ROLE ernstfall_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_pw';
  \echo created role ernstfall_app
\else
  ALTER ROLE ernstfall_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
\endif
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ernstfall') AS new_db \gset
\if :new_db
  CREATE DATABASE ernstfall OWNER ernstfall_owner;
  \echo created database ernstfall
\else
  ALTER DATABASE ernstfall OWNER TO ernstfall_owner;
\endif
REVOKE ALL ON DATABASE ernstfall FROM PUBLIC;
GRANT CONNECT, TEMP ON DATABASE ernstfall TO ernstfall_app;
\c ernstfall
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO ernstfall_owner;
SQL
) || die "creating roles/database failed; see $LOG"
[[ -n $out ]] && while IFS= read -r line; do say "$line"; done <<<"$out"
[[ $out == *"created database"* ]] || say "database ernstfall present (owner ernstfall_owner)"

LOGIN_ERR=$STATE/logs/login-check.err
can_login() { # role password
  PGPASSWORD=$2 PGCONNECT_TIMEOUT=5 psql -X -w -h 127.0.0.1 -p "$PGPORT" -U "$1" -d ernstfall -Atqc 'select 1' >/dev/null 2>"$LOGIN_ERR"
}
HBA_MARK='# ernstfall (deploy/setup.sh): password login for the app roles'
ensure_hba() {
  local hba
  hba=$(as_postgres -d postgres -Atc 'SHOW hba_file')
  grep -qF "$HBA_MARK" "$hba" && return 0
  # First match wins, so the rule goes before the first non-comment line.
  awk -v mark="$HBA_MARK" '!done && !/^[[:space:]]*(#|$)/ {
      print mark; print "host ernstfall ernstfall_owner,ernstfall_app 127.0.0.1/32 scram-sha-256"; done = 1 }
    { print } END { if (!done) { print mark; print "host ernstfall ernstfall_owner,ernstfall_app 127.0.0.1/32 scram-sha-256" } }' \
    "$hba" >"$hba.ernstfall-tmp"
  cat "$hba.ernstfall-tmp" >"$hba" && rm -f "$hba.ernstfall-tmp"
  as_postgres -d postgres -Atc 'SELECT pg_reload_conf()' >/dev/null
  say "added a scram-sha-256 rule for 127.0.0.1 to $hba"
}
for pair in "ernstfall_owner:$OWNER_PW" "ernstfall_app:$APP_PW"; do
  role=${pair%%:*} pw=${pair#*:}
  can_login "$role" "$pw" && continue
  if grep -q 'password authentication failed' "$LOGIN_ERR"; then
    as_postgres -d postgres <<<"\\set pw '$pw'
ALTER ROLE $role PASSWORD :'pw';" 2>>"$LOG"
    say "updated password of role $role to the one in $STATE/secrets"
  elif grep -qE 'no pg_hba.conf entry|authentication method|Ident|peer' "$LOGIN_ERR"; then
    ensure_hba
  fi
  can_login "$role" "$pw" || die "cannot log in as $role on 127.0.0.1:$PGPORT: $(head -n1 "$LOGIN_ERR")"
done
rm -f "$LOGIN_ERR"
say "password login ok for ernstfall_owner and ernstfall_app on 127.0.0.1:$PGPORT"

# --- 7. env file -------------------------------------------------------------------------------
ENV_FILE=$STATE/env
(
  umask 077
  cat >"$ENV_FILE.tmp" <<EOF
# Written by deploy/setup.sh on every run; edit the setup script, not this file.
DATABASE_URL=postgres://ernstfall_app:$APP_PW@127.0.0.1:$PGPORT/ernstfall
REDIS_URL=redis://127.0.0.1:6379
ERNSTFALL_BOOTSTRAP_TOKEN_FILE=$STATE/secrets/bootstrap-token
ERNSTFALL_SECRET_KEY_FILE=$STATE/secrets/secret-key
ERNSTFALL_BACKUP_ROOTS=$STATE/backups
ERNSTFALL_SANDBOX_PULL=never
ERNSTFALL_SIGNING_KEY_FILE=$STATE/secrets/signing-key.pem
ERNSTFALL_TRUSTED_KEYS_DIR=$STATE/keys
ERNSTFALL_CHECKPOINT_DIR=$STATE/checkpoints
EOF
)
if cmp -s "$ENV_FILE.tmp" "$ENV_FILE"; then
  rm -f "$ENV_FILE.tmp"
  say "env file unchanged: $ENV_FILE"
else
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  say "wrote env file $ENV_FILE"
fi
chmod 600 "$ENV_FILE"
# the owner role's URL is kept apart: migrations and set-up read it, the running service never does
OWNER_ENV=$STATE/owner.env
( umask 077; printf '# Written by deploy/setup.sh: the owner role (migrations only). Not for the running service.\nDATABASE_OWNER_URL=postgres://ernstfall_owner:%s@127.0.0.1:%s/ernstfall\n' "$OWNER_PW" "$PGPORT" >"$OWNER_ENV.tmp" )
if cmp -s "$OWNER_ENV.tmp" "$OWNER_ENV"; then rm -f "$OWNER_ENV.tmp"; else mv "$OWNER_ENV.tmp" "$OWNER_ENV"; say "wrote $OWNER_ENV"; fi
chmod 600 "$OWNER_ENV"

# --- 8. node modules and migrations -----------------------------------------------------------
command -v npm >/dev/null || die "npm not found: install Node.js >= 20.11 (Debian's nodejs is too old; use NodeSource or nodejs.org)"
if [[ ! -d $REPO/node_modules ]]; then
  if [[ -f $REPO/package-lock.json ]]; then how=ci; else how=install; fi
  (cd "$REPO" && npm "$how" --no-audit --no-fund) >>"$LOG" 2>&1 || die "npm $how failed; see $LOG"
  say "installed node modules (npm $how)"
else
  say "node modules present"
fi
if [[ -f $REPO/db/migrate.ts ]]; then
  t=$SECONDS
  # Run output is indented under the action line.
  # shellcheck disable=SC1090
  (cd "$REPO" && set -a && . "$ENV_FILE" && . "$OWNER_ENV" && set +a && npx --no-install tsx db/migrate.ts) 2>&1 | sed 's/^/      /' ||
    die "migrations failed (npx tsx db/migrate.ts)"
  say "migrations: ran db/migrate.ts ($((SECONDS - t))s)"
else
  say "migrations: skipped (db/migrate.ts does not exist yet)"
fi

# evidence signing key (Ed25519): created once, never overwritten; its public key is trusted for verification.
# Refused (exit 3, the way out printed) when the database's ledger was signed by keys this installation does not
# trust, e.g. a second checkout sharing the database `ernstfall` (services/evidence/key-check.ts).
key_rc=0
(cd "$REPO" && set -a && . "$ENV_FILE" && set +a && npx --no-install tsx services/evidence/keys-cli.ts init) 2>&1 | sed 's/^/  /' || key_rc=${PIPESTATUS[0]}
((key_rc == 3)) && die "no new signing key for a database whose ledger another key signed: see the ways out above"
((key_rc == 0)) || die "could not create the evidence signing key (npm run keys -- init)"

# --- 9. offline sandbox images -----------------------------------------------------------------
IMAGES=("15 bookworm" "17 trixie")
if [[ ${ERNSTFALL_SKIP_IMAGES:-0} == 1 ]]; then
  say "sandbox images skipped (ERNSTFALL_SKIP_IMAGES=1)"
else
  todo=()
  for spec in "${IMAGES[@]}"; do
    read -r major suite <<<"$spec"
    tag=ernstfall/sandbox-postgres:$major
    # layout 2: a template cluster in the image (see build-sandbox-image.sh); older images are rebuilt
    layout=$(docker image inspect -f '{{ index .Config.Labels "org.ernstfall.image-layout" }}' "$tag" 2>/dev/null || true)
    if [[ $layout == 2 ]]; then say "image $tag present"; else todo+=("$spec"); fi
  done
  build() { # major suite -> logs/build-<major>.log
    local t=$SECONDS
    bash "$REPO/deploy/build-sandbox-image.sh" "$1" "$2" >"$STATE/logs/build-sandbox-postgres-$1.log" 2>&1 || return 1
    echo "built image ernstfall/sandbox-postgres:$1 from Debian $2 in $((SECONDS - t))s"
  }
  failed=()
  if ((${#todo[@]} > 1)) && [[ ${ERNSTFALL_PARALLEL_IMAGES:-1} == 1 ]]; then
    # Mostly download and unpack; side by side is faster even on 2 cores.
    pids=()
    for spec in "${todo[@]}"; do
      read -r major suite <<<"$spec"
      { build "$major" "$suite" || exit 1; } >"$STATE/logs/build-$major.result" &
      pids+=("$!")
    done
    for i in "${!todo[@]}"; do
      read -r major _ <<<"${todo[$i]}"
      if wait "${pids[$i]}"; then say "$(<"$STATE/logs/build-$major.result")"; else failed+=("$major"); fi
      rm -f "$STATE/logs/build-$major.result"
    done
  else
    for spec in "${todo[@]}"; do
      read -r major suite <<<"$spec"
      if line=$(build "$major" "$suite"); then say "$line"; else failed+=("$major"); fi
    done
  fi
  for major in "${failed[@]}"; do
    echo "--- tail of $STATE/logs/build-sandbox-postgres-$major.log" >&2
    tail -n 25 "$STATE/logs/build-sandbox-postgres-$major.log" >&2
  done
  ((${#failed[@]} == 0)) || die "building sandbox image(s) for PostgreSQL ${failed[*]} failed"

  # the files driver's image (archives, folders, restic, borg), MariaDB 10.11's (bookworm) and 11.8's (trixie); layout 1 (see the build scripts)
  for spec in "files ernstfall/sandbox-files:bookworm bookworm" "mariadb ernstfall/sandbox-mariadb:10.11 bookworm" "mariadb ernstfall/sandbox-mariadb:11.8 trixie"; do
    read -r kind tag suite <<<"$spec"
    layout=$(docker image inspect -f '{{ index .Config.Labels "org.ernstfall.image-layout" }}' "$tag" 2>/dev/null || true)
    if [[ $layout == 1 ]]; then
      say "image $tag present"
      continue
    fi
    t=$SECONDS
    log="$STATE/logs/build-sandbox-$kind-$suite.log"
    bash "$REPO/deploy/build-$kind-image.sh" "$suite" "$tag" >"$log" 2>&1 || {
      echo "--- tail of $log" >&2
      tail -n 25 "$log" >&2
      die "building the sandbox image $tag failed"
    }
    say "built image $tag from Debian $suite in $((SECONDS - t))s"
  done

  # the base of ernstfall's own container image (Dockerfile ARG BASE): Debian bookworm + Node 24 from the npm registry
  if docker image inspect ernstfall/node-base:24 >/dev/null 2>&1; then
    say "image ernstfall/node-base:24 present"
  else
    t=$SECONDS
    log=$STATE/logs/build-node-base.log
    bash "$REPO/deploy/build-node-base.sh" >"$log" 2>&1 || { echo "--- tail of $log" >&2; tail -n 25 "$log" >&2; die "building the image ernstfall/node-base:24 failed"; }
    say "built image ernstfall/node-base:24 in $((SECONDS - t))s"
  fi
  # the test application of application groups (decisions/021): docker build FROM node-base, offline
  out=$(bash "$REPO/deploy/build-test-app-image.sh" 2>>"$STATE/logs/build-test-app.log") || die "building the image ernstfall/test-app:1 failed (see $STATE/logs/build-test-app.log)"
  say "$out"
fi

# --- 10. systemd units (npm run setup -- --systemd; deploy/install-systemd.sh) -----------------
if [[ $SYSTEMD == 1 ]]; then
  bash "$REPO/deploy/install-systemd.sh" || die "installing the systemd units failed"
elif [[ -f ${ERNSTFALL_SYSTEMD_DIR:-/etc/systemd/system}/ernstfall-api.service ]] && getent passwd ernstfall >/dev/null; then
  # installed before: this run may have rewritten env as root-only, and the service user reads it
  bash "$REPO/deploy/install-systemd.sh" --permissions || die "re-applying the state folder's permissions for the ernstfall user failed"
fi

# --- summary ------------------------------------------------------------------------------------
cat <<EOF

ernstfall is set up ($((SECONDS - T_START))s).
  PostgreSQL $PGVER/$PGCLUSTER on 127.0.0.1:$PGPORT, database ernstfall
  Redis      127.0.0.1:6379
  Docker     $(docker info -f '{{.ServerVersion}}, storage driver {{.Driver}}')
  env        $ENV_FILE   (load with: set -a; . $ENV_FILE; set +a)
  log        $LOG
Next:
  npm run demo
  npm test
EOF
