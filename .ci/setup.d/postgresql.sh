#!/usr/bin/env bash
# Debian's PostgreSQL server binaries for the distributed-search test; the test itself creates
# and starts a throwaway cluster as the `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
ls -d /usr/lib/postgresql/*/bin
