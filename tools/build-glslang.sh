#!/bin/sh
# Builds glslang 15 (the standalone compiler only) from Debian trixie's source package into a
# cache directory outside the repository, because Debian 12's glslang 12.0 cannot compile
# GL_KHR_cooperative_matrix shaders. Idempotent: does nothing when a glslang >= 13 is already
# there. Prints the binary's path on stdout (everything else goes to stderr).
#
#   VKT_TOOLS_DIR   cache directory (default $HOME/.cache/vktrain-tools)
#   result:         $VKT_TOOLS_DIR/glslang-15/bin/glslang
#
# About 2 minutes on 2 cores (measured here: see docs/backends.md, Build). Needs apt (Debian/Ubuntu) for
# its build tools and the source package; uses sudo when not run as root.
set -eu

TOOLS_DIR="${VKT_TOOLS_DIR:-$HOME/.cache/vktrain-tools}"
PREFIX="$TOOLS_DIR/glslang-15"
BIN="$PREFIX/bin/glslang"

log() { echo "build-glslang: $*" >&2; }

# "Glslang Version: 11:15.1.0" -> 15 (the part after the colon is glslang's own version).
glslang_major() {
    "$1" --version 2>/dev/null | sed -n 's/^Glslang Version: [0-9]*:\([0-9]*\)\..*/\1/p' | head -n1
}

if [ -x "$BIN" ]; then
    major="$(glslang_major "$BIN")"
    if [ -n "$major" ] && [ "$major" -ge 13 ]; then
        echo "$BIN"
        exit 0
    fi
    log "$BIN reports version '${major:-?}', rebuilding"
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
start=$(date +%s)

# Build tools: dpkg-dev for `apt-get source`, python3 for glslang's generated sources.
missing=""
for p in dpkg-dev cmake g++ make python3 xz-utils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done

# A source-only entry for trixie, on the mirror the system already uses: binaries stay
# bookworm's, only `apt-get source` sees trixie.
mirror="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
          | grep -v security | head -n1 | tr -d ' ' | sed 's:/*$::')"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
SRC_LIST=/etc/apt/sources.list.d/vktrain-trixie-src.list
need_update=0
if [ ! -f "$SRC_LIST" ]; then
    log "adding $SRC_LIST (deb-src $mirror trixie main)"
    echo "deb-src $mirror trixie main" | $SUDO tee "$SRC_LIST" >/dev/null
    need_update=1
fi
if [ -n "$missing" ] || [ "$need_update" -eq 1 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq >&2
fi
if [ -n "$missing" ]; then
    log "installing$missing"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/vkt-glslang.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
log "downloading the glslang source package (trixie)"
apt-get source --download-only -qq -t trixie glslang >/dev/null 2>"$work/apt.log" \
  || apt-get source --download-only -qq glslang/trixie >/dev/null 2>>"$work/apt.log" \
  || { cat "$work/apt.log" >&2; log "apt-get source failed. HINT: check network access to $mirror"; exit 1; }
orig="$(ls glslang_*.orig.tar.* | head -n1)"
log "unpacking $orig"
mkdir src
tar -xf "$orig" -C src --strip-components=1

log "configuring and building (quiet; errors are shown)"
if ! cmake -S src -B build -DCMAKE_BUILD_TYPE=Release -DENABLE_OPT=OFF -DGLSLANG_TESTS=OFF \
        -DENABLE_HLSL=OFF -DENABLE_GLSLANG_BINARIES=ON -DBUILD_TESTING=OFF \
        -DCMAKE_INSTALL_PREFIX="$PREFIX" >"$work/configure.log" 2>&1; then
    cat "$work/configure.log" >&2; log "configure failed"; exit 1
fi
if ! cmake --build build --target glslang-standalone -j"$(nproc)" >"$work/build.log" 2>&1; then
    grep -E -B2 -A6 'error|Error' "$work/build.log" >&2 || tail -n 50 "$work/build.log" >&2
    log "build failed"; exit 1
fi

# Install atomically: a half-copied tool must never look finished.
mkdir -p "$TOOLS_DIR"
rm -rf "$PREFIX.tmp"
mkdir -p "$PREFIX.tmp/bin"
cp build/StandAlone/glslang "$PREFIX.tmp/bin/glslang"
strip "$PREFIX.tmp/bin/glslang" 2>/dev/null || true
ln -s glslang "$PREFIX.tmp/bin/glslangValidator"
rm -rf "$PREFIX"
mv "$PREFIX.tmp" "$PREFIX"

major="$(glslang_major "$BIN")"
log "installed glslang $("$BIN" --version | sed -n 's/^Glslang Version: [0-9]*://p') in $(( $(date +%s) - start )) s"
[ -n "$major" ] && [ "$major" -ge 13 ] || { log "the built glslang reports version '${major:-?}'"; exit 1; }
echo "$BIN"
