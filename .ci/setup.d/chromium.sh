#!/usr/bin/env bash
# Debian's headless Chromium for the browser tests (the report page, the draw-a-digit page).
# No browser download is possible here: the distribution's package is the browser.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
fi
chromium --version
