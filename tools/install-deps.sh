#!/bin/sh
# Installs what building and testing vktrain needs on Debian/Ubuntu, skipping what is there.
# Uses sudo when not run as root. The GPU backends' packages join this list with their code.
set -eu
PKGS="build-essential cmake libiniparser-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-deps: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
