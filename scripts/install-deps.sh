#!/usr/bin/env bash
# Installs the Debian packages RingDesk builds against, if any is missing (needs root or sudo).
# The Swift toolchain itself is expected on PATH (Swift 6.1 or newer).
set -euo pipefail
packages=(liburing-dev libsodium-dev libsqlite3-dev pkg-config iproute2)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
