#!/bin/sh
# Prepares the GPU check (tools/gpu-check.sh) for the device machine a session may be lent: a
# Release build with every shader variant (glslang 15), the programs the check runs and the
# shared libraries they need beyond glibc, in .gpu/ (ignored by git), and the Vulkan loader's
# Debian packages in .gl/ (the device's image has the NVIDIA driver but may lack the loader).
#
#   tools/gpu-bundle.sh            then, with the device tool:
#   run(command="sh tools/gpu-check.sh", carry=[".gpu", ".gl"], timeout_s=540)
#
# The build has no BLAS (the cpu backend's own GEMM: nothing big to carry); Vulkan and OpenCL
# are loaded at run time, as everywhere. About 5 MiB travel.
set -eu
cd "$(dirname "$0")/.."
GLSLANG="$(tools/build-glslang.sh)"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DVKT_BLAS=OFF -DVKT_GLSLANG="$GLSLANG" >/dev/null
cmake --build build-gpu -j2 --target vktrain bench_matmul test_backend_ops >/dev/null
rm -rf .gpu && mkdir -p .gpu/bin .gpu/lib
cp build-gpu/vktrain build-gpu/bench_matmul build-gpu/test_backend_ops .gpu/bin/
# the libraries the programs link beyond the C library itself
for lib in $(ldd .gpu/bin/* | awk '$3 ~ /^\// { print $3 }' | sort -u); do
    case "$(basename "$lib")" in
        libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
        *) cp -L "$lib" .gpu/lib/ ;;
    esac
done
for p in .gpu .gl; do
    grep -qx "/$p/" .git/info/exclude 2>/dev/null || echo "/$p/" >> .git/info/exclude
done
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update >/dev/null
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 >/dev/null)
fi
echo "gpu-bundle: $(du -sh .gpu | cut -f1) in .gpu ($(ls .gpu/bin | tr '\n' ' ')), $(ls .gl | tr '\n' ' ')in .gl"
echo "gpu-bundle: next: device run(command=\"sh tools/gpu-check.sh\", carry=[\".gpu\", \".gl\"], timeout_s=540)"
