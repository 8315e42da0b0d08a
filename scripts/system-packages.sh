#!/usr/bin/env bash
# Debian packages the test suite needs, installed only when missing (.ci/run calls this first):
#   fonts-dejavu-core  the TrueType family embedded in exam PDFs (without it they fall back to Helvetica)
#   chromium, chromium-driver  the headless browser of the widget's tests (driven by Playwright at /usr/bin/chromium)
#   nginx  the proxy of `make cluster` and its end-to-end tests, in front of several server processes (deploy/nginx/);
#          run by scripts/cluster.py as the user, from the repository: the distribution's own service is not used
# With arguments, only those packages (`make cluster` asks for nginx alone).
set -euo pipefail
packages=(fonts-dejavu-core chromium chromium-driver nginx)
[ $# -gt 0 ] && packages=("$@")
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
