# shellcheck shell=bash
# Throwaway PostgreSQL cluster helpers.  Source after test/lib/common.sh.
#
#   ivf_tmp_init                 create $IVF_TMP (mktemp -d, owned by postgres when root)
#   ivf_cluster_start            initdb + start a cluster under $IVF_TMP/cluster, listening
#                                only on a unix socket in $IVF_TMP/cluster/sock; exports
#                                PGHOST PGPORT PGUSER=postgres PGDATABASE=postgres and
#                                writes the same exports to $IVF_TMP/cluster/env.sh
#   ivf_cluster_env              source that env.sh (after starting in a subshell)
#   ivf_cluster_stop             stop it (fast, then immediate)
#   ivf_cleanup                  stop the cluster, end any postmaster left under $IVF_TMP
#                                (e.g. TAP nodes of an interrupted prove), remove $IVF_TMP
#
# Scripts do:  ivf_tmp_init; trap ivf_cleanup EXIT; ivf_cluster_start
# The system cluster (/var/lib/postgresql/15/main) is never touched and
# pg_ctlcluster is not used.

IVF_TMP="" # never inherited: ivf_cleanup removes it

ivf_pg_bindir() {
	"$(ivf_pg_config)" --bindir
}

ivf_tmp_init() {
	IVF_TMP="$(mktemp -d "${TMPDIR:-/tmp}/ivf-test.XXXXXX")"
	chmod 755 "$IVF_TMP"
	ivf_chown_pg "$IVF_TMP"
	export IVF_TMP
}

# A port nobody listens on.  The cluster only opens a unix socket in its own
# private directory, so clashes are impossible anyway; this just keeps the
# number distinct from other local servers to avoid confusion in logs.
ivf_free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		if [ -e "/var/run/postgresql/.s.PGSQL.$port" ] || [ -e "/tmp/.s.PGSQL.$port" ]; then
			continue
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		printf '%s\n' "$port"
		return 0
	done
	return 1
}

ivf_cluster_start() {
	local bindir base port
	bindir="$(ivf_pg_bindir)"
	base="$IVF_TMP/cluster"
	IVF_PGDATA="$base/data"
	IVF_PGSOCK="$base/sock"
	IVF_PGLOG="$base/postgres.log"
	mkdir -p "$base" "$IVF_PGSOCK"
	chmod 700 "$IVF_PGSOCK"
	ivf_chown_pg "$base"
	port="$(ivf_free_port)" || { ivf_warn "no free port found"; return 1; }

	if ivf_is_root; then
		ivf_info "initdb $IVF_PGDATA (as postgres)"
	else
		ivf_info "initdb $IVF_PGDATA (as $(id -un))"
	fi
	if ! ivf_as_pg "$bindir/initdb" -D "$IVF_PGDATA" --auth=trust -E UTF8 --locale=C \
		-U postgres --no-sync >"$base/initdb.log" 2>&1; then
		cat "$base/initdb.log" >&2
		return 1
	fi
	# shellcheck disable=SC2016 # $1 is expanded by the inner sh
	ivf_as_pg sh -c 'cat >> "$1/postgresql.conf"' sh "$IVF_PGDATA" <<CONF

# --- ivf throwaway test cluster ---
listen_addresses = ''
unix_socket_directories = '$IVF_PGSOCK'
port = $port
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 30
shared_buffers = 256MB
CONF
	ivf_info "starting server (socket $IVF_PGSOCK, port $port)"
	if ! ivf_as_pg "$bindir/pg_ctl" -D "$IVF_PGDATA" -l "$IVF_PGLOG" -w -t 120 start >/dev/null; then
		ivf_warn "server did not start; log follows"
		cat "$IVF_PGLOG" >&2 || true
		return 1
	fi
	cat >"$IVF_TMP/cluster/env.sh" <<ENV
export PGHOST='$IVF_PGSOCK' PGPORT='$port' PGUSER=postgres PGDATABASE=postgres
export IVF_PGDATA='$IVF_PGDATA' IVF_PGSOCK='$IVF_PGSOCK' IVF_PGLOG='$IVF_PGLOG'
unset PGPASSWORD PGSERVICE PGHOSTADDR PGSSLMODE PGOPTIONS
ENV
	ivf_cluster_env
	ivf_info "server up: PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER"
}

ivf_cluster_env() {
	# shellcheck disable=SC1091
	. "$IVF_TMP/cluster/env.sh"
}

ivf_cluster_stop() {
	local bindir data="$IVF_TMP/cluster/data"
	[ -n "$IVF_TMP" ] && [ -f "$data/postmaster.pid" ] || return 0
	bindir="$(ivf_pg_bindir)"
	ivf_info "stopping server ($data)"
	if ! ivf_as_pg "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1; then
		ivf_as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
}

# End postmasters whose data directory lies under $IVF_TMP (our own cluster
# and TAP test nodes), by the pid in their postmaster.pid.
ivf_kill_leftover_postmasters() {
	local pidfile pid
	[ -n "$IVF_TMP" ] && [ -d "$IVF_TMP" ] || return 0
	while IFS= read -r pidfile; do
		pid="$(head -n 1 "$pidfile" 2>/dev/null || true)"
		case "$pid" in '' | *[!0-9]*) continue ;; esac
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q postgres; then
			ivf_warn "stopping leftover postmaster $pid ($(dirname "$pidfile"))"
			kill -QUIT "$pid" 2>/dev/null || true
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.5
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done < <(find "$IVF_TMP" -name postmaster.pid -type f 2>/dev/null)
}

ivf_cleanup() {
	local rc=$?
	set +e
	ivf_cluster_stop
	ivf_kill_leftover_postmasters
	if [ -n "$IVF_TMP" ] && [ -d "$IVF_TMP" ]; then
		if [ "${IVF_KEEP_TMP:-0}" = 1 ]; then
			ivf_info "IVF_KEEP_TMP=1: leaving $IVF_TMP"
		else
			rm -rf "$IVF_TMP"
		fi
	fi
	return "$rc"
}
