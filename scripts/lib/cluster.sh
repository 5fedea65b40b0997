# shellcheck shell=bash
#
# scripts/lib/cluster.sh: a whole FrameFlow cluster on this machine (PostgreSQL,
# coordinator, N nodes) for the bench and load scripts.
#
# Source scripts/lib/deps.sh and scripts/lib/postgres.sh first, then:
#
#   cluster_up DIR BIN NODES SLOTS [--set key=value ...]
#       DIR   work directory (under /tmp): cluster.yaml, certs/, data/, pg/, logs/
#       BIN   directory with frameflow, frameflow-coordinator, frameflow-node
#       NODES number of nodes (node-1 ... node-N), SLOTS slots per node
#       extra arguments are passed to frameflow-coordinator
#       CLUSTER_DATA_DIR (environment) puts uploads, spool and results elsewhere
#       than DIR/data (e.g. on tmpfs, to measure without the disk)
#       CLUSTER_DATABASE_SERVER (environment), a PostgreSQL URL: use a fresh
#       database on that server instead of starting one in DIR/pg
#     Waits until every node is online. Exports CLUSTER_API (http://...), CLUSTER_NODE_ADDRESS (HOST:PORT nodes dial),
#     CLUSTER_DATABASE_URL, CLUSTER_COORDINATOR_PID, CLUSTER_NODE_PIDS (space
#     separated), FRAMEFLOW_URL and FRAMEFLOW_ADMIN_TOKEN (for `frameflow nodes ...`).
#     Without CLUSTER_DATABASE_SERVER it also exports DATABASE_URL (pg_start).
#     Called again (another DIR), it starts a second cluster beside the first: the exports then
#     describe the newest one (copy them first); cluster_down stops them all.
#   cluster_down                   stops every cluster's processes and PostgreSQL (or drops the databases)
#   cluster_token EMAIL PASSWORD   registers (if new) and logs in; prints the access token
#   cluster_cpu_seconds PID...     user+system CPU seconds the processes have used so far
#
# Functions return non-zero with a message on stderr instead of exiting.

CLUSTER_PIDS=()
# The directories whose PostgreSQL cluster_up started, and the databases it made on CLUSTER_DATABASE_SERVER.
CLUSTER_PG_DIRS=()
CLUSTER_DB_NAMES=()

cluster_up() {
    local dir=$1 bin=$2 nodes=$3 slots=$4
    shift 4
    local data=${CLUSTER_DATA_DIR:-$dir/data}
    mkdir -p "$dir/logs" "$data"
    if [[ ! -f $dir/certs/ca.pem ]]; then
        "$bin/frameflow" certs init --dir "$dir/certs" >/dev/null || return 1
    fi
    local i
    for ((i = 1; i <= nodes; i++)); do
        [[ -f $dir/certs/node-$i.pem ]] || "$bin/frameflow" certs issue "node-$i" --dir "$dir/certs" >/dev/null || return 1
    done
    local http_port cluster_port pg_port
    http_port=$(ff_free_port 18080)
    cluster_port=$(ff_free_port 17070)
    pg_port=$(ff_free_port 57432)
    if [[ -n ${CLUSTER_DATABASE_SERVER:-} ]]; then
        local db_name
        db_name="ff_cluster_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        psql "$CLUSTER_DATABASE_SERVER" -qc "CREATE DATABASE $db_name" >/dev/null || return 1
        CLUSTER_DB_NAMES+=("$db_name")
        CLUSTER_DATABASE_URL="${CLUSTER_DATABASE_SERVER%/*}/$db_name"
    else
        pg_start "$dir/pg" "$pg_port" || return 1
        CLUSTER_PG_DIRS+=("$dir/pg")
        CLUSTER_DATABASE_URL=$DATABASE_URL
    fi
    export CLUSTER_DATABASE_URL
    FRAMEFLOW_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    export FRAMEFLOW_ADMIN_TOKEN
    cat > "$dir/cluster.yaml" <<EOF
coordinator:
  http_listen: 127.0.0.1:$http_port
  cluster_listen: 127.0.0.1:$cluster_port
  database_url: $CLUSTER_DATABASE_URL
  tls: { ca: certs/ca.pem, cert: certs/coordinator.pem, key: certs/coordinator.key }
  storage: { uploads_dir: $data/uploads, spool_dir: $data/spool, results_dir: $data/results }
  admin_token: $FRAMEFLOW_ADMIN_TOKEN
node:
  coordinator: 127.0.0.1:$cluster_port
  tls: { ca: certs/ca.pem }
  slots: $slots
logging:
  format: json
  level: notice
EOF
    "$bin/frameflow-coordinator" --config "$dir/cluster.yaml" "$@" >"$dir/logs/coordinator.log" 2>&1 &
    CLUSTER_COORDINATOR_PID=$!
    CLUSTER_PIDS+=("$CLUSTER_COORDINATOR_PID")
    CLUSTER_API="http://127.0.0.1:$http_port"
    CLUSTER_NODE_ADDRESS="127.0.0.1:$cluster_port"
    export CLUSTER_NODE_ADDRESS
    FRAMEFLOW_URL=$CLUSTER_API
    export CLUSTER_API FRAMEFLOW_URL CLUSTER_COORDINATOR_PID
    for i in $(seq 1 300); do
        curl -fsS "$CLUSTER_API/health" >/dev/null 2>&1 && break
        if ! kill -0 "$CLUSTER_COORDINATOR_PID" 2>/dev/null; then
            echo "the coordinator exited:" >&2; tail -20 "$dir/logs/coordinator.log" >&2; return 1
        fi
        sleep 0.1
    done
    CLUSTER_NODE_PIDS=""
    for ((i = 1; i <= nodes; i++)); do
        "$bin/frameflow-node" --config "$dir/cluster.yaml" \
            --cert "$dir/certs/node-$i.pem" --key "$dir/certs/node-$i.key" >"$dir/logs/node-$i.log" 2>&1 &
        CLUSTER_PIDS+=($!)
        CLUSTER_NODE_PIDS="$CLUSTER_NODE_PIDS $!"
    done
    export CLUSTER_NODE_PIDS
    local online=0
    for i in $(seq 1 300); do
        online=$("$bin/frameflow" nodes list --json 2>/dev/null | grep -c '"state" : "online"' || true)
        [[ $online -ge $nodes ]] && return 0
        sleep 0.1
    done
    echo "only $online of $nodes nodes came online; logs in $dir/logs" >&2
    return 1
}

cluster_down() {
    local pid
    for pid in "${CLUSTER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${CLUSTER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    CLUSTER_PIDS=()
    local name pg
    for name in "${CLUSTER_DB_NAMES[@]}"; do
        psql "$CLUSTER_DATABASE_SERVER" -qc "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1
    done
    for pg in "${CLUSTER_PG_DIRS[@]}"; do pg_stop "$pg" >/dev/null 2>&1; done
    CLUSTER_DB_NAMES=() CLUSTER_PG_DIRS=()
    return 0
}

cluster_token() {
    local email=$1 password=$2
    curl -fsS -o /dev/null -X POST "$CLUSTER_API/auth/register" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" 2>/dev/null || true
    curl -fsS -X POST "$CLUSTER_API/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" | sed -n 's/.*"accessToken" *: *"\([^"]*\)".*/\1/p'
}

cluster_cpu_seconds() {
    local ticks pid total=0
    ticks=$(getconf CLK_TCK)
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat (after the parenthesised name) are utime and stime.
        total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    awk -v t="$total" -v hz="$ticks" 'BEGIN { printf "%.2f", t / hz }'
}
