#!/bin/bash
# One-shot init of the guard's own PostgreSQL store on the stack's server (compose profile
# "pg-store"): the login role "guard" and the database "guard" it owns. Idempotent: safe on every
# start and on an existing data volume; the role's password follows MCP_GUARD_DB_PASSWORD.
# The guard creates and migrates its tables itself when it starts.
set -euo pipefail
: "${MCP_GUARD_DB_PASSWORD:?MCP_GUARD_DB_PASSWORD is not set (docker/.env)}"
psql -v ON_ERROR_STOP=1 -v guard_password="$MCP_GUARD_DB_PASSWORD" --dbname postgres <<'SQL'
SELECT 'CREATE ROLE guard LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'guard')
\gexec
SELECT format('ALTER ROLE guard WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'guard_password')
\gexec
SELECT 'CREATE DATABASE guard OWNER guard'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'guard')
\gexec
REVOKE ALL ON DATABASE guard FROM PUBLIC;
SQL
echo "pg-store: role and database 'guard' ready"
