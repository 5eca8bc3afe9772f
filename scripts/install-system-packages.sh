#!/usr/bin/env bash
# Debian/Ubuntu packages Qt, VTK and the virtual display need (ENVIRONMENT.md). A no-op where all
# are present; installs them where we are root; otherwise prints the one command to run.
set -euo pipefail
PKGS=(libglib2.0-0 libxkbcommon0 libgl1 libegl1 libfontconfig1 libdbus-1-3 xvfb xauth
      libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
      libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxrender1 libxi6 libsm6 libice6
      libegl-mesa0 libgl1-mesa-dri)   # Mesa llvmpipe: VTK renders through EGL without a GPU
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup: not a Debian-like system; install Qt's X11 libraries, Mesa (GL, EGL, OSMesa) and Xvfb yourself" >&2
  exit 0
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: missing system packages; run: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
