# shellcheck shell=bash
#
# scripts/lib/objectstore.sh: a throwaway S3-compatible object store for tests.
#
# OpenStack Swift (Debian's swift-proxy, swift-object, swift-container, swift-account) with its
# s3api middleware and tempauth, one replica on loopback, everything in a private directory
# (nothing under /etc changes). Source this file, then:
#
#   os_install_if_missing      # apt-get install the Swift servers and memcached when missing
#   os_start DIR PORT          # configure (once) + start; exports FRAMEFLOW_S3_URL and the keys
#                              # (PORT and the next four are used: pick them below the ephemeral
#                              # range, /proc/sys/net/ipv4/ip_local_port_range, or an outgoing
#                              # connection may hold one and the servers cannot bind)
#   os_stop DIR                # stop every server started from DIR; no-op when none runs
#   os_status DIR              # exit 0 if the proxy started from DIR answers /healthcheck
#   os_create_bucket NAME      # creates bucket NAME (idempotent) on the store FRAMEFLOW_S3_URL names
#
# The S3 endpoint is http://127.0.0.1:PORT (path-style addressing, region us-east-1), access key
# `test:tester`, secret `testing` (tempauth's test user: a throwaway, never point it at data you
# care about). As root the servers run as the `swift` system user (created by the packages, or
# here); as anyone else, as that user. Layout of DIR: etc/ (configurations and rings), srv/d1 (the
# one device), run/*.pid, log/*.log, ports.
#
# Every function returns non-zero with a message on stderr rather than exiting: the caller sourced
# us and owns the shell.

# The list lives in scripts/lib/deps.sh; this default keeps the file usable on its own.
if [ -z "${FRAMEFLOW_OBJECTSTORE_PACKAGES+x}" ]; then
    FRAMEFLOW_OBJECTSTORE_PACKAGES=(swift-proxy swift-object swift-container swift-account memcached)
fi

os_install_if_missing() {
    local missing=() pkg
    for pkg in "${FRAMEFLOW_OBJECTSTORE_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if [ "$(id -u)" != 0 ]; then
        echo "objectstore.sh: missing ${missing[*]} (apt-get install them as root)" >&2
        return 1
    fi
    echo "objectstore.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    } || { echo "objectstore.sh: apt-get install ${missing[*]} failed" >&2; return 1; }
}

_os_owner() {
    if [ "$(id -u)" = 0 ]; then echo swift; else id -un; fi
}

_os_as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u swift -- "$@"; else "$@"; fi
}

_os_absdir() {
    case "$1" in /*) echo "$1" ;; *) echo "$(pwd)/$1" ;; esac
}

# Prints a free TCP port on 127.0.0.1 at or above $1.
_os_free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

# Same reason as postgres.sh: the daemons must not inherit the caller's pipes.
_os_close_inherited_fds() {
    local fd
    for fd in $(ls "/proc/$BASHPID/fd" 2>/dev/null); do
        if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    return 0
}

_os_write_server_conf() {
    local dir=$1 kind=$2 port=$3 owner=$4
    cat >"$dir/etc/$kind-server.conf" <<EOF
# Written by scripts/lib/objectstore.sh: a throwaway single-replica store on loopback.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = $owner
swift_dir = $dir/etc
devices = $dir/srv
mount_check = false
log_level = WARNING
# Swift keeps 1 % of the filesystem free by default (2.5 GiB of a 252 GiB disk) and then answers
# 507, which s3api turns into 503 "reduce your request rate": a throwaway store on a shared disk
# would fail while gigabytes are still free.
fallocate_reserve = 0

[pipeline:main]
pipeline = $kind-server

[app:$kind-server]
use = egg:swift#$kind
EOF
    # The replicators, auditors and updaters are not started: one replica, short-lived data.
}

_os_configure() {
    local dir=$1 port=$2 owner=$3 oport cport aport mport kind
    mkdir -p "$dir/etc" "$dir/srv/d1" "$dir/run" "$dir/log" || return 1
    oport=$(_os_free_port $((port + 1)))
    cport=$(_os_free_port $((oport + 1)))
    aport=$(_os_free_port $((cport + 1)))
    mport=$(_os_free_port $((aport + 1)))
    cat >"$dir/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = frameflow-test-suffix
swift_hash_path_prefix = frameflow-test-prefix

[storage-policy:0]
name = Policy-0
default = yes
EOF
    _os_write_server_conf "$dir" object "$oport" "$owner"
    _os_write_server_conf "$dir" container "$cport" "$owner"
    _os_write_server_conf "$dir" account "$aport" "$owner"
    cat >"$dir/etc/proxy-server.conf" <<EOF
# Written by scripts/lib/objectstore.sh. S3 API (s3api) in front of tempauth; test user test:tester/testing.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = $owner
swift_dir = $dir/etc
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$mport

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF
    for kind in object:$oport container:$cport account:$aport; do
        local name=${kind%%:*} p=${kind##*:}
        (cd "$dir/etc" &&
            swift-ring-builder "$name.builder" create 8 1 1 >/dev/null &&
            swift-ring-builder "$name.builder" add "r1z1-127.0.0.1:$p/d1" 100 >/dev/null &&
            { swift-ring-builder "$name.builder" rebalance >/dev/null || true; }) || {
            echo "objectstore.sh: building the $name ring failed" >&2; return 1
        }
        [ -f "$dir/etc/$name.ring.gz" ] || { echo "objectstore.sh: no $name ring after rebalance" >&2; return 1; }
    done
    echo "$port $oport $cport $aport $mport" >"$dir/ports"
    if [ "$(id -u)" = 0 ]; then
        chown -R "$owner:" "$dir" || return 1
        chmod 700 "$dir"
    fi
}

_os_ensure_owner() {
    [ "$(id -u)" = 0 ] || return 0
    id swift >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin swift 2>/dev/null ||
        id swift >/dev/null 2>&1 || { echo "objectstore.sh: could not create the swift user" >&2; return 1; }
}

# A bucket is a Swift container: made with Swift's own API (tempauth), so no S3 client is needed.
os_create_bucket() {
    local name=${1:?usage: os_create_bucket NAME} auth token url
    auth=$(curl -fsS -D - -o /dev/null -H "X-Auth-User: ${FRAMEFLOW_S3_ACCESS_KEY_ID:-test:tester}" \
        -H "X-Auth-Key: ${FRAMEFLOW_S3_SECRET_ACCESS_KEY:-testing}" "${FRAMEFLOW_S3_URL:?os_start first}/auth/v1.0" | tr -d '\r') || {
        echo "objectstore.sh: tempauth at $FRAMEFLOW_S3_URL refused us" >&2; return 1
    }
    token=$(echo "$auth" | sed -n 's/^X-Auth-Token: //Ip')
    url=$(echo "$auth" | sed -n 's/^X-Storage-Url: //Ip')
    curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" "$url/$name" || {
        echo "objectstore.sh: cannot create bucket $name" >&2; return 1
    }
}

os_status() {
    local dir port
    dir="$(_os_absdir "${1:?usage: os_status DIR}")"
    [ -f "$dir/ports" ] || return 1
    read -r port _ <"$dir/ports"
    [ "$(curl -s -m 2 "http://127.0.0.1:$port/healthcheck" 2>/dev/null)" = OK ]
}

# Starts one daemon in the background, its output in DIR/log/NAME.log, its pid in DIR/run/NAME.pid.
_os_spawn() {
    local dir=$1 name=$2; shift 2
    ( _os_close_inherited_fds
      cd "$dir" || exit 1
      if [ "$(id -u)" = 0 ]; then
          setsid runuser -u swift -- "$@" </dev/null >>"$dir/log/$name.log" 2>&1 &
      else
          setsid "$@" </dev/null >>"$dir/log/$name.log" 2>&1 &
      fi
      echo $! >"$dir/run/$name.pid" )
}

os_start() {
    local dir port owner oport cport aport mport i
    dir="$(_os_absdir "${1:?usage: os_start DIR PORT}")"
    port="${2:?usage: os_start DIR PORT}"
    command -v swift-proxy-server >/dev/null && command -v memcached >/dev/null || {
        echo "objectstore.sh: Swift or memcached not installed (run os_install_if_missing)" >&2; return 1
    }
    _os_ensure_owner || return 1
    owner="$(_os_owner)"
    os_status "$dir" && { _os_export "$dir"; return 0; }
    if [ ! -f "$dir/ports" ]; then
        mkdir -p "$dir" || return 1
        _os_configure "$dir" "$port" "$owner" || return 1
    fi
    read -r port oport cport aport mport <"$dir/ports"
    # memcached first: s3api with tempauth refuses requests without it ("Memcache required").
    _os_spawn "$dir" memcached memcached -l 127.0.0.1 -p "$mport" -U 0 -m 64 || return 1
    _os_spawn "$dir" object swift-object-server "$dir/etc/object-server.conf" -v || return 1
    _os_spawn "$dir" container swift-container-server "$dir/etc/container-server.conf" -v || return 1
    _os_spawn "$dir" account swift-account-server "$dir/etc/account-server.conf" -v || return 1
    _os_spawn "$dir" proxy swift-proxy-server "$dir/etc/proxy-server.conf" -v || return 1
    for i in $(seq 1 120); do
        if os_status "$dir"; then _os_export "$dir"; return 0; fi
        sleep 0.5
    done
    echo "objectstore.sh: the proxy on 127.0.0.1:$port did not answer /healthcheck within 60 s; last log lines:" >&2
    tail -n 15 "$dir"/log/*.log >&2 2>/dev/null
    os_stop "$dir"
    return 1
}

_os_export() {
    local port
    read -r port _ <"$1/ports"
    export FRAMEFLOW_S3_URL="http://127.0.0.1:$port"
    export FRAMEFLOW_S3_REGION=us-east-1
    export FRAMEFLOW_S3_ACCESS_KEY_ID="test:tester"
    export FRAMEFLOW_S3_SECRET_ACCESS_KEY="testing"
}

os_stop() {
    local dir name pid i
    dir="$(_os_absdir "${1:?usage: os_stop DIR}")"
    for name in proxy account container object memcached; do
        [ -f "$dir/run/$name.pid" ] || continue
        pid=$(cat "$dir/run/$name.pid")
        # The pid is the session leader setsid made (runuser or the server itself): end its group.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$dir/run/$name.pid"
    done
    return 0
}
