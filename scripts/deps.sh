#!/usr/bin/env bash
# deps.sh — install the Debian bookworm packages imgsim builds and tests with (only the missing ones).
set -euo pipefail
pkgs=(build-essential pkg-config libvips-dev libxnnpack-dev libpthreadpool-dev libcmocka-dev
      libmicrohttpd-dev libjansson-dev libopenblas-dev liblapacke-dev libcurl4-openssl-dev
      libsqlite3-dev clang libclang-rt-14-dev python3-numpy python3-onnx python3-hnswlib
      curl wrk chromium)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Node.js + npm (ONNX Runtime cross-checks): any install that provides the commands will do
command -v node > /dev/null || missing+=(nodejs)
command -v npm > /dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
