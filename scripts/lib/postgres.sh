# shellcheck shell=bash
#
# scripts/lib/postgres.sh: a throwaway PostgreSQL cluster for tests and the quickstart.
#
# Source this file, then:
#
#   pg_install_if_missing          # apt-get install postgresql if no server binaries exist
#   pg_start DIR PORT              # initdb (once) + start; exports DATABASE_URL
#   pg_restart DIR [DOWN_SECONDS]  # stop fast, stay down DOWN_SECONDS (default 0), start again
#   pg_stop DIR                    # stop fast; no-op when not running
#   pg_status DIR                  # exit 0 if the cluster in DIR is running
#
# Layout of DIR: data/ (PGDATA), run/ (unix socket), postgres.log, port.
# The server refuses to run as root, so as root the cluster is owned by the
# `postgres` system user (created if missing); as a normal user it is owned by
# that user. It listens only on 127.0.0.1:PORT, trusts every local connection
# (it is a throwaway: never point this at data you care about) and trades
# durability for speed (fsync off). A superuser role and database, both named
# `frameflow`, are created; DATABASE_URL points at them.
#
# Every function returns non-zero with a message on stderr rather than exiting,
# because the caller sourced us and owns the shell.

# The directory holding initdb/pg_ctl. Prefer the versioned Debian directory
# (highest version) over whatever happens to be on PATH (/usr/local/bin may hold
# symlinks or a different build); fall back to PATH, then pg_config.
pg_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || continue
        if [ -z "$best" ] || [ "$(basename "$(dirname "$d")")" -gt "$(basename "$(dirname "$best")")" ] 2>/dev/null; then
            best="$d"
        fi
    done
    if [ -n "$best" ]; then echo "$best"; return 0; fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"; return 0
    fi
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir; return 0
    fi
    return 1
}

pg_install_if_missing() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && return 0
    done
    echo "postgres.sh: no PostgreSQL server under /usr/lib/postgresql; installing with apt-get" >&2
    if [ "$(id -u)" != 0 ]; then
        echo "postgres.sh: need root to install postgresql (apt-get install -y postgresql)" >&2
        return 1
    fi
    # Debian's postinst may try to start the packaged cluster; we never use it,
    # and in containers without an init system that start is simply skipped.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || {
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
    } || { echo "postgres.sh: apt-get install postgresql failed" >&2; return 1; }
    pg_bindir >/dev/null || { echo "postgres.sh: postgresql installed but initdb not found" >&2; return 1; }
}

# The account that owns and runs the cluster.
_pg_owner() {
    if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

_pg_ensure_owner() {
    [ "$(id -u)" = 0 ] || return 0
    id postgres >/dev/null 2>&1 && return 0
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
        --shell /bin/sh postgres 2>/dev/null ||
        id postgres >/dev/null 2>&1 ||   # lost a race with another pg_start
        { echo "postgres.sh: could not create the postgres user" >&2; return 1; }
}

# Runs "$@" as the cluster owner, from DIR (initdb and pg_ctl fail when the
# current directory is unreadable to them, e.g. /root).
_pg_as_owner() {
    local dir="$1"; shift
    if [ "$(id -u)" = 0 ]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

_pg_absdir() {
    case "$1" in
        /*) echo "$1" ;;
        *) echo "$(pwd)/$1" ;;
    esac
}

pg_status() {
    local dir bindir
    dir="$(_pg_absdir "${1:?usage: pg_status DIR}")"
    [ -f "$dir/data/PG_VERSION" ] || return 1
    bindir="$(pg_bindir)" || return 1
    _pg_as_owner "$dir" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

# Waits until the server accepts connections on 127.0.0.1:PORT (pg_ctl -w
# only knows it started; recovery after a crash can take a moment more).
_pg_wait_ready() {
    local port="$1" i
    for i in $(seq 1 120); do
        if pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d postgres 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    echo "postgres.sh: server on 127.0.0.1:$port not ready after 60s" >&2
    return 1
}

_pg_psql() {
    local port="$1"; shift
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

# Writes the settings we own into DIR/data/frameflow.conf (included from
# postgresql.conf), so that a restart keeps the same port and socket.
_pg_write_conf() {
    local dir="$1" port="$2" sockdir="$3"
    cat >"$dir/data/frameflow.conf" <<EOF
# Written by scripts/lib/postgres.sh on every pg_start: a throwaway test cluster.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
# The lease tables churn (every lease rewrites its segment row several times): autovacuum and
# analyze must come round in seconds, not the default minute, or the claim walks dead index
# entries and plans from empty-table statistics (docs/OPERATIONS.md, "PostgreSQL").
autovacuum_naptime = 5s
EOF
    grep -q "^include_if_exists = 'frameflow.conf'" "$dir/data/postgresql.conf" ||
        echo "include_if_exists = 'frameflow.conf'" >>"$dir/data/postgresql.conf"
}

# Closes every descriptor above stderr in the current (sub)shell. The server
# is a daemon that outlives us: it must not inherit our caller's pipes or
# sockets, or a `scripts/test | tee` (or a parent waiting for EOF on a pipe,
# as Foundation's Process does) would wait for the server to exit.
_pg_close_inherited_fds() {
    local fd
    for fd in $(ls "/proc/$BASHPID/fd" 2>/dev/null); do
        if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    return 0
}

_pg_start_server() {
    local dir="$1" bindir="$2"
    ( _pg_close_inherited_fds
      _pg_as_owner "$dir" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start </dev/null >/dev/null ) || {
        echo "postgres.sh: pg_ctl start failed; last lines of $dir/postgres.log:" >&2
        tail -n 20 "$dir/postgres.log" >&2 2>/dev/null
        return 1
    }
}

pg_start() {
    local dir port bindir owner sockdir running_port=""
    dir="$(_pg_absdir "${1:?usage: pg_start DIR PORT}")"
    port="${2:?usage: pg_start DIR PORT}"
    bindir="$(pg_bindir)" || { echo "postgres.sh: PostgreSQL not installed (run pg_install_if_missing)" >&2; return 1; }
    _pg_ensure_owner || return 1
    owner="$(_pg_owner)"

    mkdir -p "$dir" || return 1
    # The socket path must fit in sun_path (107 bytes) with "/.s.PGSQL.<port>".
    sockdir="$dir/run"
    if [ "${#sockdir}" -gt 90 ]; then
        sockdir="/tmp/ff-pg-$(echo "$dir" | cksum | cut -d' ' -f1)"
        echo "postgres.sh: $dir is too long for a unix socket path; socket in $sockdir" >&2
    fi
    mkdir -p "$sockdir" || return 1
    if [ "$(id -u)" = 0 ]; then
        chown "$owner:" "$dir" "$sockdir" || return 1
        chmod 700 "$dir" "$sockdir"
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "postgres.sh: user postgres cannot reach $dir (a parent directory is not searchable); use a DIR under /tmp or /var/tmp" >&2
            return 1
        fi
    fi

    if [ ! -f "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir/data"
        _pg_as_owner "$dir" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
            --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
            echo "postgres.sh: initdb failed:" >&2; tail -n 20 "$dir/initdb.log" >&2; return 1
        }
        # Trust only loopback TCP and the socket: the server listens nowhere else anyway.
        cat >"$dir/data/pg_hba.conf" <<'EOF'
local all all              trust
host  all all 127.0.0.1/32 trust
EOF
        [ "$(id -u)" = 0 ] && chown "$owner:" "$dir/data/pg_hba.conf"
    fi

    if pg_status "$dir"; then
        running_port="$(cat "$dir/port" 2>/dev/null)"
        if [ "$running_port" != "$port" ]; then
            echo "postgres.sh: cluster in $dir runs on port ${running_port:-?}; restarting on $port" >&2
            _pg_as_owner "$dir" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || return 1
        fi
    fi
    _pg_write_conf "$dir" "$port" "$sockdir"
    [ "$(id -u)" = 0 ] && chown "$owner:" "$dir/data/frameflow.conf"
    echo "$port" >"$dir/port"
    if ! pg_status "$dir"; then
        _pg_start_server "$dir" "$bindir" || return 1
    fi
    _pg_wait_ready "$port" || return 1

    _pg_psql "$port" >/dev/null <<'EOF' || { echo "postgres.sh: could not create role/database frameflow" >&2; return 1; }
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'frameflow') THEN
        CREATE ROLE frameflow LOGIN SUPERUSER;
    END IF;
END
$$;
SELECT 'CREATE DATABASE frameflow OWNER frameflow'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'frameflow') \gexec
EOF
    export DATABASE_URL="postgresql://frameflow@127.0.0.1:$port/frameflow"
    return 0
}

pg_stop() {
    local dir bindir
    dir="$(_pg_absdir "${1:?usage: pg_stop DIR}")"
    pg_status "$dir" || return 0
    bindir="$(pg_bindir)" || return 1
    _pg_as_owner "$dir" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
}

pg_restart() {
    local dir down="${2:-0}" bindir port
    dir="$(_pg_absdir "${1:?usage: pg_restart DIR [DOWN_SECONDS]}")"
    [ -f "$dir/data/PG_VERSION" ] || { echo "postgres.sh: no cluster in $dir (pg_start first)" >&2; return 1; }
    bindir="$(pg_bindir)" || return 1
    port="$(cat "$dir/port")"
    pg_stop "$dir" || return 1
    [ "$down" = 0 ] || sleep "$down"
    _pg_start_server "$dir" "$bindir" || return 1
    _pg_wait_ready "$port"
}
