#!/bin/sh
# Runs once, when the data directory is empty (docker-entrypoint-initdb.d):
# one login role and one database it owns per Engage service, with the
# password from that service's Secret (engage-<service>-db).
set -eu

create_service_database() { # name password
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=name="$1" --set=password="$2" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') \gexec
SQL
}

create_service_database roles "$ENGAGE_ROLES_DB_PASSWORD"
create_service_database skills "$ENGAGE_SKILLS_DB_PASSWORD"
create_service_database incentives "$ENGAGE_INCENTIVES_DB_PASSWORD"
