#!/usr/bin/env bash
# Installs Debian packages the tests need. Usage: apt-install.sh [--if-missing PATH] PACKAGE...
set -euo pipefail
if [ "${1:-}" = "--if-missing" ]; then
  compgen -G "$2" >/dev/null && exit 0
  shift 2
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "==> apt: installing $*"
$sudo apt-get update -qq
# policy-rc.d keeps the packages from starting system-wide services: tests start their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
