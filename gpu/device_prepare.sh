#!/usr/bin/env bash
# Prepare a device check (run here, where the project builds): the
# standalone test of the GPU library, built here, with the libraries it
# needs that a bare GPU machine may lack (OpenBLAS and its Fortran
# runtime), copied into .devlibs/ (ignored by git), which the device tool
# carries.  Then, on the lent machine (see gpu/NOTES.md):
#
#   device run, carry [".devlibs"], command: bash gpu/device_check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
make -s gpu/test_ivf_gpu
rm -rf .devlibs
mkdir -p .devlibs
cp gpu/test_ivf_gpu .devlibs/
for lib in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do
	path="$(ldd gpu/test_ivf_gpu | awk -v l="$lib" '$1 == l { print $3 }')"
	[ -n "$path" ] && cp -L "$path" .devlibs/
done
grep -qx '/.devlibs/' .git/info/exclude 2>/dev/null || echo '/.devlibs/' >>.git/info/exclude
du -sh .devlibs
ls .devlibs
