#!/usr/bin/env bash
# Install everything ivf needs to build, test and demo, from Debian bookworm's
# own archive.  Used by test/run_all.sh and bench/demo.sh.
#
#   bash test/lib/install-deps.sh [EXTRA_PACKAGE...]
#
# As root: installs whatever of the list is missing (apt-get update first);
# when everything is already installed apt is not touched at all, so the
# script is idempotent and fast on a prepared machine.  IVF_FORCE_APT=1 runs
# apt-get update/install regardless; IVF_SKIP_APT=1 skips apt entirely.
# Not root: apt is skipped; missing packages are listed, and the exit status
# is 1 if any is missing.
set -euo pipefail

IVF_DEPS=(
	make gcc libc6-dev              # build
	postgresql-15                   # server + client binaries (initdb, pg_ctl, psql, pg_dump)
	postgresql-server-dev-15        # PGXS, pg_regress, PostgreSQL::Test perl modules; pulls clang-14/llvm-14 for bitcode
	libopenblas-dev                 # BLAS used by the distance kernels
	perl libipc-run-perl            # TAP tests (prove, Test::More, IPC::Run)
	clang libclang-rt-14-dev        # libFuzzer + ASan/UBSan runtime for `make fuzz`
	python3 python3-venv ca-certificates  # client compatibility test (venv + pip from PyPI)
	python3-faiss python3-numpy     # TAP 016: Faiss reads our files, we read Faiss's
	dataset-fashion-mnist           # real data every machine can get: TAP 010/016/017, kernel tests
	hipcc libamdhip64-dev           # make hip-check: the GPU library's HIP half compiles (no hipBLAS in Debian)
	util-linux gzip coreutils       # runuser, gzip -dc, mktemp (in the base image; listed to be explicit)
)
# Optional: installed in their own apt-get call, so that a failure leaves
# the rest installed; what needs them reports a skip with the reason.
IVF_OPTIONAL_DEPS=(
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user  # make neon-check: the NEON kernels under qemu
)

pkgs=()
for p in "${IVF_DEPS[@]}" "$@"; do
	pkgs+=("$p")
done

missing=()
for p in "${pkgs[@]}"; do
	status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
	if [ "$status" != "install ok installed" ]; then
		missing+=("$p")
	fi
done
opt_missing=()
for p in "${IVF_OPTIONAL_DEPS[@]}"; do
	status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
	if [ "$status" != "install ok installed" ]; then
		opt_missing+=("$p")
	fi
done

# install_optional: never fails the script
install_optional() {
	if [ "${#opt_missing[@]}" -eq 0 ]; then
		return 0
	fi
	echo "[deps] installing optional: ${opt_missing[*]}"
	if ! apt-get install -y --no-install-recommends "${opt_missing[@]}"; then
		echo "[deps] WARNING: could not install ${opt_missing[*]}; the steps that need them will skip" >&2
	fi
}

if [ "${IVF_SKIP_APT:-0}" = 1 ]; then
	echo "[deps] IVF_SKIP_APT=1: not touching apt (missing: ${missing[*]:-none}; optional: ${opt_missing[*]:-none})"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	if [ "${#opt_missing[@]}" -gt 0 ]; then
		echo "[deps] not root; optional packages missing (their steps skip): ${opt_missing[*]}"
	fi
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "[deps] not root; all ${#pkgs[@]} required packages are installed"
		exit 0
	fi
	echo "[deps] not root, so apt is skipped; missing packages: ${missing[*]}" >&2
	echo "[deps] install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

if [ "${#missing[@]}" -eq 0 ] && [ "${#opt_missing[@]}" -eq 0 ] && [ "${IVF_FORCE_APT:-0}" != 1 ]; then
	echo "[deps] all ${#pkgs[@]} required and ${#IVF_OPTIONAL_DEPS[@]} optional packages already installed; skipping apt-get"
	exit 0
fi

# Install only what is missing (so a prepared machine's packages are not
# upgraded behind its back); IVF_FORCE_APT=1 asks for the whole list.
if [ "${IVF_FORCE_APT:-0}" = 1 ]; then
	missing=("${pkgs[@]}")
	opt_missing=("${IVF_OPTIONAL_DEPS[@]}")
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
if [ "${#missing[@]}" -gt 0 ]; then
	echo "[deps] installing: ${missing[*]}"
	apt-get install -y --no-install-recommends "${missing[@]}"
fi
install_optional
echo "[deps] done"
