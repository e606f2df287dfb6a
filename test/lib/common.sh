# shellcheck shell=bash
# Shared helpers for test/run_all.sh and bench/demo.sh.  Source, don't run.
#
#   IVF_REPO_ROOT          absolute path of the repository
#   ivf_header TEXT        print a step header
#   ivf_info / ivf_warn    messages
#   ivf_is_root            true when running as uid 0
#   ivf_pg_config          path of pg_config (PG_CONFIG, Debian's 15, or PATH)
#   ivf_data_dir           absolute data dir ($IVF_DATA_DIR or ../shared/data), or fails
#   ivf_as_pg CMD...       run CMD as the `postgres` OS user when root, else as ourselves,
#                          from / (so it never needs access to the caller's cwd)
#   ivf_chown_pg PATH...   give PATHs to `postgres` when root (no-op otherwise)

IVF_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export IVF_REPO_ROOT

ivf_header() {
	printf '\n======== %s ========\n' "$*"
}

ivf_info() {
	printf '[ivf] %s\n' "$*"
}

ivf_warn() {
	printf '[ivf] WARNING: %s\n' "$*" >&2
}

ivf_die() {
	printf '[ivf] ERROR: %s\n' "$*" >&2
	exit 1
}

ivf_is_root() {
	[ "$(id -u)" -eq 0 ]
}

# Print the pg_config to use: $PG_CONFIG, else PostgreSQL 15's own, else the
# one on PATH (Debian's /usr/bin/pg_config wrapper).
ivf_pg_config() {
	if [ -n "${PG_CONFIG:-}" ]; then
		printf '%s\n' "$PG_CONFIG"
	elif [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		printf '%s\n' /usr/lib/postgresql/15/bin/pg_config
	elif command -v pg_config >/dev/null 2>&1; then
		command -v pg_config
	else
		return 1
	fi
}

# Absolute path of the shared data directory: $IVF_DATA_DIR if set, else
# ../shared/data relative to the repository root.  Fails if it doesn't exist.
ivf_data_dir() {
	local d="${IVF_DATA_DIR:-$IVF_REPO_ROOT/../shared/data}"
	[ -d "$d" ] || return 1
	(cd "$d" && pwd)
}

ivf_as_pg() {
	if ivf_is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

ivf_chown_pg() {
	if ivf_is_root; then
		if id postgres >/dev/null 2>&1; then
			chown -R postgres:postgres "$@"
		else
			ivf_warn "no 'postgres' OS user (is postgresql-15 installed?); not changing owner of $*"
		fi
	fi
}

# Format seconds since $1 (from `date +%s`) as "Ns".
ivf_elapsed() {
	printf '%ss' "$(($(date +%s) - $1))"
}
