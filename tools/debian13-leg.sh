#!/bin/sh
# The Debian 13 (trixie) test leg: builds vktrain inside a minimal trixie root whose lavapipe
# (Mesa 26 from trixie-backports) has VK_KHR_cooperative_matrix and VK_NV_cooperative_matrix2,
# and runs the Vulkan tests there with VKT_REQUIRE_COOPMAT=1 VKT_REQUIRE_BACKENDS=vulkan, so
# the cooperative-matrix matmul tiers are executed, not only compiled. Debian 12's Mesa has no
# cooperative matrix, and trixie's packages do not install on Debian 12 (they need its glibc).
#
#   tools/debian13-leg.sh [-R REGEX] [SOURCE_DIR] [-- CTEST_ARGS...]
#
#   SOURCE_DIR      the project to test (default: the repository this script is in); bind-mounted
#                   read-only at /work/src in the root, built in /work/build there (never in
#                   the repository: its build/ belongs to the host's cmake)
#   -R REGEX        the ctest selection (default $VKT_DEB13_TESTS, else the Vulkan tests, the
#                   CLI's errors, which train on vulkan:0, and the op comparison on vulkan:0:
#                   'vulkan|shaders|cli_errors|test_backend_ops$')
#   VKT_TOOLS_DIR   cache directory (default $HOME/.cache/vktrain-tools)
#   VKT_DEB13_REQUIRE_COOPMAT  the tests' VKT_REQUIRE_COOPMAT (default 1: every cooperative-
#                   matrix tier executed; 0 shows what else fails, while a tier is refused)
#   root:           $VKT_TOOLS_DIR/debian13-root (about 1.6 GiB with the build), made once; its stamp file
#                   (.vktrain-stamp) records the package set, and a changed set updates the root
#   exit status:    ctest's (or 1 when the root or the build cannot be made)
#
# Needs root (re-runs itself with sudo otherwise), debootstrap (installed with apt when
# missing) and network access to the Debian mirror the host's apt sources name. Measured here
# (2 cores): first run 3 min (the root 2 min 10 s), later runs 1.5 min: see docs/tests.md.
# The root's mounts (/proc, /sys, /dev, the source) are undone on every exit; runs are
# serialized by a lock, and mounts a killed run left behind are reused, never stacked.
set -eu

TOOLS_DIR="${VKT_TOOLS_DIR:-$HOME/.cache/vktrain-tools}"
ROOT="$TOOLS_DIR/debian13-root"
SUITE=trixie
# The base packages come from trixie; BACKPORTS from trixie-backports (Mesa 26's lavapipe).
# OpenCL's are there so the project configures fully (its OpenCL backend is built and
# linked into the same executables as in the host legs).
PKGS="build-essential cmake libiniparser-dev libopenblas-dev"
PKGS="$PKGS libvulkan-dev glslang-tools spirv-tools vulkan-validationlayers"
PKGS="$PKGS opencl-headers ocl-icd-libopencl1 libclblast-dev pocl-opencl-icd"
BACKPORTS="mesa-vulkan-drivers"
# Bump when the way the root is made changes (not only its package set).
LAYOUT=1

log() { echo "debian13-leg: $*" >&2; }
die() { log "$*"; exit 1; }

# ---- arguments ---------------------------------------------------------------------------
REGEX="${VKT_DEB13_TESTS:-vulkan|shaders|cli_errors|test_backend_ops\$}"
SRC=""
while [ $# -gt 0 ]; do
    case "$1" in
        -R) [ $# -ge 2 ] || die "-R needs a regular expression"; REGEX="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        -*) die "unknown option '$1' (usage: $0 [-R REGEX] [SOURCE_DIR] [-- CTEST_ARGS...])" ;;
        *) [ -z "$SRC" ] || die "one SOURCE_DIR only (got '$SRC' and '$1')"; SRC="$1"; shift ;;
    esac
done
[ -n "$SRC" ] || SRC="$(dirname "$0")/.."
[ -f "$SRC/CMakeLists.txt" ] || die "$SRC has no CMakeLists.txt: not a vktrain source tree"
SRC="$(cd "$SRC" && pwd -P)"

if [ "$(id -u)" -ne 0 ]; then
    log "not root: re-running under sudo (chroot and mounts need root)"
    exec sudo -E env VKT_TOOLS_DIR="$TOOLS_DIR" VKT_DEB13_TESTS="$REGEX" \
        VKT_DEB13_REQUIRE_COOPMAT="${VKT_DEB13_REQUIRE_COOPMAT:-1}" "$0" "$SRC" -- "$@"
fi

# ---- helpers -------------------------------------------------------------------------------
phase_start=0
phase() { phase_start=$(date +%s); log "$*"; }
phase_done() { log "  done in $(( $(date +%s) - phase_start )) s"; }

# The mount points at or below $1, deepest first (unmount order). /proc/self/mounts escapes
# spaces as \040; the cache path is expected to have none.
mounts_under() {
    awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
unmount_all() {
    for m in $(mounts_under "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m" || log "could not unmount $m"
    done
}
# Mounts unless already mounted (a killed run's leftovers are reused, never stacked).
mount_once() {
    target="$1"; shift
    mountpoint -q "$target" && return 0
    mkdir -p "$target"
    mount "$@" "$target"
}
mount_system() {
    mount_once "$1/proc" -t proc proc
    mount_once "$1/sys" --bind /sys
    mount_once "$1/dev" --bind /dev
    mount_once "$1/dev/pts" --bind /dev/pts
    mount_once "$1/dev/shm" -t tmpfs -o mode=1777 tmpfs
    # DNS for apt inside (debootstrap copies it too; the host's may have changed since)
    cp -L /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null || true
}
in_root() { # ROOT COMMAND...: a clean environment, nothing of the host's but what is named
    r="$1"; shift
    chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# The mirror the host's apt sources name (one-line and deb822 formats), not the security one.
host_mirror() {
    m="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | grep -v security | head -n1 | tr -d ' ' | sed 's:/*$::')"
    echo "${m:-http://deb.debian.org/debian}"
}

# ---- lock and cleanup ------------------------------------------------------------------------
mkdir -p "$TOOLS_DIR"
exec 9>"$TOOLS_DIR/debian13-root.lock"
if ! flock -n 9; then
    log "another run holds $TOOLS_DIR/debian13-root.lock: waiting"
    flock 9
fi
cleanup() {
    st=$?
    unmount_all "$ROOT"
    unmount_all "$ROOT.partial"
    left="$( { mounts_under "$ROOT"; mounts_under "$ROOT.partial"; } | head -n1)"
    [ -z "$left" ] || log "WARNING: still mounted: $left (umount it by hand)"
    exit $st
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

MIRROR="$(host_mirror)"
STAMP_WANT="layout=$LAYOUT suite=$SUITE mirror=$MIRROR packages=$PKGS backports=$BACKPORTS"
total_start=$(date +%s)

# ---- the root: debootstrap once -------------------------------------------------------------
# debootstrap writes into $ROOT.partial, renamed to $ROOT only when it succeeded, so an
# interrupted run never leaves a root that looks made; the stamp is written last, after the
# packages, so an interrupted install is redone.
if [ ! -d "$ROOT" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap (host)"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
    fi
    unmount_all "$ROOT.partial"
    [ -z "$(mounts_under "$ROOT.partial")" ] || die "$ROOT.partial still has mounts; not removing it"
    rm -rf --one-file-system "$ROOT.partial"
    phase "debootstrap --variant=minbase $SUITE into $ROOT ($MIRROR; about 2 minutes)"
    if ! debootstrap --variant=minbase "$SUITE" "$ROOT.partial" "$MIRROR" >"$TOOLS_DIR/debian13-debootstrap.log" 2>&1; then
        tail -n 20 "$TOOLS_DIR/debian13-debootstrap.log" >&2
        die "debootstrap failed (log: $TOOLS_DIR/debian13-debootstrap.log). HINT: check network access to $MIRROR"
    fi
    mv "$ROOT.partial" "$ROOT"
    phase_done
fi

mount_system "$ROOT"

# ---- the packages: installed or updated when the stamp differs -------------------------------
if [ "$(cat "$ROOT/.vktrain-stamp" 2>/dev/null)" != "$STAMP_WANT" ]; then
    phase "installing packages in the root ($SUITE: $PKGS; $SUITE-backports: $BACKPORTS)"
    rm -f "$ROOT/.vktrain-stamp"
    echo "deb $MIRROR $SUITE-backports main" >"$ROOT/etc/apt/sources.list.d/backports.list"
    apt_log="$TOOLS_DIR/debian13-apt.log"
    # shellcheck disable=SC2086 # the package lists are word lists
    if ! { in_root "$ROOT" apt-get update -qq &&
           in_root "$ROOT" apt-get install -y -qq --no-install-recommends $PKGS &&
           in_root "$ROOT" apt-get install -y -qq --no-install-recommends -t "$SUITE-backports" $BACKPORTS &&
           in_root "$ROOT" apt-get clean; } >"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2
        die "apt-get in the root failed (log: $apt_log)"
    fi
    echo "$STAMP_WANT" >"$ROOT/.vktrain-stamp"
    phase_done
fi
log "root: $ROOT ($(in_root "$ROOT" dpkg-query -W -f='${Package} ${Version}' mesa-vulkan-drivers), \
$(in_root "$ROOT" dpkg-query -W -f='glslang-tools ${Version}' glslang-tools), \
$(in_root "$ROOT" dpkg-query -W -f='vulkan-validationlayers ${Version}' vulkan-validationlayers))"

# ---- the project: bind-mounted read-only, built in the root ----------------------------------
mount_once "$ROOT/work/src" --bind "$SRC"
mount -o remount,bind,ro "$ROOT/work/src"
mkdir -p "$ROOT/work/build"
phase "building $SRC in the root (/work/build; log: $ROOT/work/build.log)"
if ! in_root "$ROOT" sh -ec '
    cmake -S /work/src -B /work/build -DCMAKE_BUILD_TYPE=Release
    cmake --build /work/build -j"$(nproc)"' >"$ROOT/work/build.log" 2>&1; then
    grep -E -B2 -A8 'error|Error' "$ROOT/work/build.log" >&2 || tail -n 50 "$ROOT/work/build.log" >&2
    die "the build in the root failed (log: $ROOT/work/build.log)"
fi
# the configure summary, and every compiler warning (gcc 14 sees some that Debian 12's does not)
grep -E 'vktrain: (vulkan|opencl) backend|vktrain: (glslang|cooperative-matrix)' "$ROOT/work/build.log" | sed 's/^-- /  /' >&2 || true
if grep -q 'warning:' "$ROOT/work/build.log"; then
    log "WARNING: the build in the root has compiler warnings:"
    grep -A4 'warning:' "$ROOT/work/build.log" >&2
fi
phase_done

# ---- the tests --------------------------------------------------------------------------------
# The leg's requirements: a Vulkan device, and the cooperative-matrix tiers executed on it
# (tests/coopmat_tiers.h). test_backend_ops compares vulkan:0 only (the host legs cover
# OpenCL). Other VKT_* and OPENBLAS_* variables of the caller pass through (VKT_TOOLS_DIR is
# the host's).
passenv="VKT_TEST_DEVICES=${VKT_TEST_DEVICES:-vulkan:0}"
for v in $(env | sed -n 's/^\(\(VKT\|OPENBLAS\|OMP\)_[A-Za-z0-9_]*\)=.*/\1/p'); do
    case "$v" in VKT_TOOLS_DIR|VKT_DEB13_*|VKT_REQUIRE_BACKENDS|VKT_REQUIRE_COOPMAT|VKT_TEST_DEVICES) continue ;; esac
    val=""; eval "val=\${$v}"
    case "$val" in *[[:space:]]*) log "not passing $v into the root (its value has spaces)"; continue ;; esac
    passenv="$passenv $v=$val"
done
coopmat="${VKT_DEB13_REQUIRE_COOPMAT:-1}"
phase "ctest -R '$REGEX' in the root (VKT_REQUIRE_COOPMAT=$coopmat VKT_REQUIRE_BACKENDS=vulkan $passenv)"
set +e
# shellcheck disable=SC2086 # passenv is a list of NAME=VALUE words
in_root "$ROOT" XDG_RUNTIME_DIR=/run/user/0 VKT_REQUIRE_COOPMAT="$coopmat" VKT_REQUIRE_BACKENDS=vulkan $passenv \
    sh -c 'mkdir -p -m 700 "$XDG_RUNTIME_DIR" && exec ctest --test-dir /work/build --output-on-failure "$@"' \
    ctest -R "$REGEX" "$@"
status=$?
set -e
phase_done
log "ctest exit status $status; total $(( $(date +%s) - total_start )) s"
exit $status
