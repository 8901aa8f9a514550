#!/usr/bin/env bash
# Installs Debian's chromium, which the console's browser test
# (cmd/asynclspd/daemon/console_browser_test.go) drives headless. Idempotent:
# nothing to do when a chromium is already on PATH. Needs root (CI runs as
# root) or sudo.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  echo "chromium: already installed ($(command -v chromium || command -v chromium-browser))"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends chromium
chromium --version
