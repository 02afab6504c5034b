#!/bin/sh
# Installs what building and testing vktrain needs on Debian/Ubuntu, skipping what is there.
# Uses sudo when not run as root. Vulkan: headers and loader, the shader compiler (Debian 12's
# glslang 12 builds every shader but the cooperative-matrix ones: see tools/build-glslang.sh),
# lavapipe (a CPU Vulkan driver, so Vulkan tests run anywhere) and the validation layers.
# OpenCL: headers, the ICD loader, CLBlast (its GEMM) and PoCL (a CPU OpenCL driver, likewise).
# MPI: OpenMPI (mpirun, and the library data parallelism links).
# --fuzz: also clang and its libFuzzer runtime, for tools/fuzz.sh.
set -eu
PKGS="build-essential cmake libiniparser-dev libopenblas-dev"
if [ "${1:-}" = "--fuzz" ]; then PKGS="$PKGS clang libclang-rt-dev"; fi
PKGS="$PKGS libvulkan-dev glslang-tools mesa-vulkan-drivers vulkan-validationlayers"
PKGS="$PKGS opencl-headers ocl-icd-libopencl1 libclblast-dev pocl-opencl-icd"
PKGS="$PKGS libopenmpi-dev openmpi-bin"
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
