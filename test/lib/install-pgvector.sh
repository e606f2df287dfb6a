#!/usr/bin/env bash
# Install pgvector into the PostgreSQL of $PG_CONFIG, for the tests that run
# ivf beside it (test/t/023_pgvector_coexist.pl).  Used by test/run_all.sh's
# install step.
#
#   bash test/lib/install-pgvector.sh
#
# pgvector is not packaged in Debian bookworm, so it is built from its
# release source, pgvector-*.tar.gz in $IVF_VENDOR_DIR (default
# ../shared/vendor next to the repository; the newest version there), in a
# temporary directory that is removed afterwards: nothing is written into
# the repository.  `make install` runs as root, or through passwordless
# sudo, or as the user (who then needs write access to PostgreSQL's
# directories).
#
# Exit status: 0 when pgvector is installed (built now, or already there at
# the tarball's version); 77 when there is neither a tarball nor an
# installed pgvector (the test then skips, saying so); 1 on a failure.
set -euo pipefail

# shellcheck source=test/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_CONFIG="$(ivf_pg_config)" || ivf_die "pg_config not found (set PG_CONFIG)"
vendor="${IVF_VENDOR_DIR:-$IVF_REPO_ROOT/../shared/vendor}"
control="$("$PG_CONFIG" --sharedir)/extension/vector.control"
library="$("$PG_CONFIG" --pkglibdir)/vector.so"

installed=""
if [ -r "$control" ] && [ -r "$library" ]; then
	installed="$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$control")"
fi

tarball=""
if [ -d "$vendor" ]; then
	tarball="$(find "$vendor" -maxdepth 1 -name 'pgvector-*.tar.gz' | sort -V | tail -n 1)"
fi

if [ -z "$tarball" ]; then
	if [ -n "$installed" ]; then
		echo "[pgvector] no tarball in $vendor; using the installed pgvector $installed"
		exit 0
	fi
	echo "[pgvector] skipped: no pgvector-*.tar.gz in $vendor (set IVF_VENDOR_DIR) and no pgvector installed in $("$PG_CONFIG" --sharedir)"
	exit 77
fi

version="$(basename "$tarball" .tar.gz)"
version="${version#pgvector-}"
if [ "$installed" = "$version" ]; then
	echo "[pgvector] $version already installed ($library)"
	exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ivf-pgvector.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "[pgvector] building $version from $tarball in $work (PG_CONFIG=$PG_CONFIG)"
tar -xzf "$tarball" -C "$work"
src="$work/pgvector-$version"
[ -f "$src/Makefile" ] || ivf_die "$tarball has no pgvector-$version/Makefile"

# OPTFLAGS="": no -march=native, so the build runs wherever it was made
make -C "$src" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >"$work/build.log" 2>&1 || {
	tail -n 40 "$work/build.log"
	ivf_die "building pgvector $version failed"
}
if ivf_is_root; then
	make -C "$src" install PG_CONFIG="$PG_CONFIG" >"$work/install.log" 2>&1
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo -n make -C "$src" install PG_CONFIG="$PG_CONFIG" >"$work/install.log" 2>&1
else
	make -C "$src" install PG_CONFIG="$PG_CONFIG" >"$work/install.log" 2>&1
fi || {
	tail -n 20 "$work/install.log"
	ivf_die "installing pgvector $version failed (run as root, or give this user write access to PostgreSQL's directories)"
}
echo "[pgvector] installed $version: $library"
