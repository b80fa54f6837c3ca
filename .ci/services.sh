#!/usr/bin/env bash
# The real parts the test suite uses, installed and started the way CI does it (Debian, as root):
# a PostgreSQL server on 127.0.0.1 and a separate virtual environment with Apache Airflow.
# Sourced by .ci/run; a developer can run it too. Exports CLICKHAUL_TEST_POSTGRES.
set -euo pipefail

missing=""
command -v pg_ctlcluster >/dev/null 2>&1 || missing="$missing postgresql"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"  # the HTML report is checked in a real browser
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 1
done
su postgres -c "psql -q -tAc \"select 1 from pg_roles where rolname = 'clickhaul'\"" | grep -q 1 \
  || su postgres -c "psql -q -c \"create user clickhaul with password 'clickhaul' superuser\""
su postgres -c "psql -q -tAc \"select 1 from pg_database where datname = 'clickhaul'\"" | grep -q 1 \
  || su postgres -c "createdb -O clickhaul clickhaul"
export CLICKHAUL_TEST_POSTGRES="postgresql://clickhaul:clickhaul@127.0.0.1:5432/clickhaul"

# Airflow pins its own dependency set: it gets its own environment, with clickhaul installed beside it.
if [ ! -x .venv-airflow/bin/airflow ]; then
  python3 -m venv .venv-airflow
  .venv-airflow/bin/pip install --quiet --disable-pip-version-check "apache-airflow==2.11.2" -e . 2>&1 \
    | grep -v "^WARNING: Location" || true
fi
# The LocalExecutor test keeps Airflow's metadata in PostgreSQL: the environment needs its driver.
if ! .venv-airflow/bin/python -c "import psycopg2" 2>/dev/null; then
  .venv-airflow/bin/pip install --quiet --disable-pip-version-check psycopg2-binary 2>&1 | grep -v "^WARNING: Location" || true
fi
