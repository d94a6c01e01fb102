#!/usr/bin/env bash
# deps_web.sh — what the browser test (tests/web) and the HTTP benchmark (bench/http.sh) need
# beyond scripts/deps.sh: Debian's chromium, Node.js with npm, and wrk. Installs only what is
# missing (apt-get, as root or through sudo). Usage: scripts/deps_web.sh [browser|bench|all]
set -euo pipefail
what=${1:-all}
pkgs=()
if [ "$what" = browser ] || [ "$what" = all ]; then
    [ -x /usr/bin/chromium ] || pkgs+=(chromium)
    command -v node > /dev/null || pkgs+=(nodejs)
    command -v npm > /dev/null || pkgs+=(npm)
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
    command -v wrk > /dev/null || pkgs+=(wrk)
    command -v curl > /dev/null || pkgs+=(curl)
fi
[ ${#pkgs[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
echo "deps_web.sh: installing ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq > /dev/null
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" > /dev/null
