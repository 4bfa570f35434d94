#!/bin/sh
# Runs once, when the postgres container starts on an empty data folder (the
# official image's /docker-entrypoint-initdb.d). The same roles and rights as
# deploy/setup.sh gives a host's PostgreSQL: ernstfall_owner owns the database
# and runs the migrations; ernstfall_app (the running service) may connect and
# use what the migrations grant it, nothing else. Passwords come from the
# secret files, through psql variables on stdin, never argv.
set -eu
owner_pw=$(cat "$ERNSTFALL_OWNER_PASSWORD_FILE")
app_pw=$(cat "$ERNSTFALL_APP_PASSWORD_FILE")
case $owner_pw$app_pw in *"'"* | *'\'*) echo "ernstfall: the database passwords must not contain ' or \\" >&2; exit 1 ;; esac
psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
\set owner_pw '$owner_pw'
\set app_pw '$app_pw'
CREATE ROLE ernstfall_owner LOGIN PASSWORD :'owner_pw';
CREATE ROLE ernstfall_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_pw';
CREATE DATABASE ernstfall OWNER ernstfall_owner;
REVOKE ALL ON DATABASE ernstfall FROM PUBLIC;
GRANT CONNECT, TEMP ON DATABASE ernstfall TO ernstfall_app;
\c ernstfall
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO ernstfall_owner;
SQL
