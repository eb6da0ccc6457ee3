#!/usr/bin/env bash
# Installs what tailor needs from Debian's packages; quick and silent when all are present.
#   scripts/setup.sh           build, run and test dependencies
#   scripts/setup.sh --torch   also python3-torch (PyTorch reference files and the speed comparison)
set -euo pipefail
packages=(cmake g++ make pkg-config libdnnl-dev libcli11-dev libtomlplusplus-dev
          nlohmann-json3-dev libfmt-dev zlib1g-dev libpng-dev libgtest-dev libbenchmark-dev
          libjpeg-dev libcpp-httplib-dev dataset-fashion-mnist chromium libplplot-dev plplot-driver-cairo)
command -v node > /dev/null || packages+=(nodejs)
command -v npm > /dev/null || packages+=(npm)
if [[ "${1:-}" == "--torch" ]]; then packages+=(python3-torch python3-numpy); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Front-end assets for report.html and the browser tests, from the npm registry (web/package-lock.json).
cd "$(dirname "$0")/../web"
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing web/ npm packages"
  npm ci --no-audit --no-fund --loglevel=error > /dev/null
fi
