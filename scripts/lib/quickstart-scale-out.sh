#!/usr/bin/env bash
# scripts/quickstart --scale-out: the scale-out shape on this machine (README "Scaling out").
#
# PostgreSQL (run/pg), the object store (OpenStack Swift + s3api, run/s3), two coordinators on the
# one database, three nodes that are given both coordinators' addresses. With the object store, it
# is the only storage the coordinators share: each has its own data directory (run/data-a,
# run/data-b: staging, spool), the uploaded videos, the segment slices and the ZIPs live in the
# bucket, and nodes read their ranges straight from it (presigned URLs in the LEASE). When the
# object store cannot be installed, the coordinators share run/data instead. The demo uploads a
# video through coordinator A and one through B, follows each job on the other coordinator and
# downloads each ZIP from the other. Argument: "true" to stop after the demo (--once). Ctrl-C
# stops everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
source scripts/lib/deps.sh
source scripts/lib/postgres.sh
source scripts/lib/objectstore.sh
once=${1:-false}

run="$root/run"
mkdir -p "$run/logs"
pids=()
pgdir="$run/pg" s3dir=""

stop_all() {
  trap - INT TERM EXIT
  ff_log "stopping"
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pg_stop "$pgdir" >/dev/null 2>&1 || true
  [[ -n $s3dir ]] && os_stop "$s3dir" >/dev/null 2>&1 || true
  ff_log "stopped"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

ensure_deps
pg_install_if_missing

ff_log "building (first build takes several minutes)"
if ! swift build >"$run/logs/build.log" 2>&1; then
  tail -40 "$run/logs/build.log" >&2
  exit 1
fi
bin="$root/.build/debug"

if [[ ! -f "$run/certs/ca.pem" ]]; then
  ff_log "creating development certificates in run/certs"
  "$bin/frameflow" certs init --dir "$run/certs"
fi
nodes=(node-1 node-2 node-3)
for node in "${nodes[@]}"; do
  [[ -f "$run/certs/$node.pem" ]] || "$bin/frameflow" certs issue "$node" --dir "$run/certs" >/dev/null
done

pg_port=$(ff_free_port "${FRAMEFLOW_QUICKSTART_PG_PORT:-55432}")
ff_log "starting PostgreSQL on 127.0.0.1:$pg_port"
pg_start "$pgdir" "$pg_port"

# The archives in the object store, when it can be had; the demo works either way.
storage=(--set coordinator.storage.kind=local)
if os_install_if_missing; then
  s3dir="$run/s3"
  s3port=$(ff_free_port "${FRAMEFLOW_QUICKSTART_S3_PORT:-28480}")
  ff_log "starting the object store (OpenStack Swift + s3api) on 127.0.0.1:$s3port"
  if os_start "$s3dir" "$s3port"; then
    # The bucket is a Swift container: made with Swift's own API (tempauth), no S3 client needed.
    auth=$(curl -fsS -D - -o /dev/null -H "X-Auth-User: $FRAMEFLOW_S3_ACCESS_KEY_ID" \
      -H "X-Auth-Key: $FRAMEFLOW_S3_SECRET_ACCESS_KEY" "$FRAMEFLOW_S3_URL/auth/v1.0" | tr -d '\r')
    swift_token=$(echo "$auth" | sed -n 's/^X-Auth-Token: //Ip')
    swift_url=$(echo "$auth" | sed -n 's/^X-Storage-Url: //Ip')
    curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $swift_token" "$swift_url/frameflow-quickstart"
    export FRAMEFLOW_COORDINATOR_STORAGE_S3_SECRET_ACCESS_KEY="$FRAMEFLOW_S3_SECRET_ACCESS_KEY"
    storage=(--set coordinator.storage.kind=s3 --set "coordinator.storage.s3.endpoint=$FRAMEFLOW_S3_URL"
             --set coordinator.storage.s3.region=us-east-1 --set coordinator.storage.s3.bucket=frameflow-quickstart
             --set coordinator.storage.s3.path_style=true
             --set "coordinator.storage.s3.access_key_id=$FRAMEFLOW_S3_ACCESS_KEY_ID"
             --set coordinator.storage.s3.uploads=s3 --set coordinator.storage.s3.node_reads=direct)
  else
    s3dir=""
    ff_log "the object store did not start: archives stay in run/data/results"
  fi
else
  ff_log "the object store (OpenStack Swift) cannot be installed here: archives stay in run/data/results"
fi

token_file="$run/admin-token"
[[ -f "$token_file" ]] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file"
export FRAMEFLOW_ADMIN_TOKEN=$(cat "$token_file")

# Two coordinators: same database, same cluster.yaml, one JWT secret file (tokens and signed links
# work on both). With the object store each has its own data directory: nothing else is shared.
http=() listen=()
for c in a b; do
  h=$(ff_free_port $((8080 + ${#http[@]} * 10))) l=$(ff_free_port $((7070 + ${#http[@]} * 10)))
  http+=("$h") listen+=("$l")
  if [[ -n $s3dir ]]; then data="$run/data-$c"; else data="$run/data"; fi
  dirs=(--set "coordinator.storage.uploads_dir=$data/uploads" --set "coordinator.storage.spool_dir=$data/spool"
        --set "coordinator.storage.results_dir=$data/results" --set "coordinator.jwt_secret_file=$run/jwt_secret")
  ff_log "starting coordinator $c (HTTP :$h, nodes :$l, data $data)"
  "$bin/frameflow-coordinator" --config cluster.yaml \
    --http "127.0.0.1:$h" --listen "127.0.0.1:$l" --database-url "$DATABASE_URL" \
    --set "coordinator.admin_token=$FRAMEFLOW_ADMIN_TOKEN" "${storage[@]}" "${dirs[@]}" >"$run/logs/coordinator-$c.log" 2>&1 &
  pids+=($!)
  for i in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$h/health" >/dev/null 2>&1 && break
    kill -0 "${pids[-1]}" 2>/dev/null || { tail -20 "$run/logs/coordinator-$c.log" >&2; exit 1; }
    sleep 0.2
  done
done
a="http://127.0.0.1:${http[0]}" b="http://127.0.0.1:${http[1]}"

# Each node knows both; they start on different ones and move when theirs goes away.
i=0
for node in "${nodes[@]}"; do
  if ((i % 2 == 0)); then list="127.0.0.1:${listen[0]},127.0.0.1:${listen[1]}"; else list="127.0.0.1:${listen[1]},127.0.0.1:${listen[0]}"; fi
  ff_log "starting $node (coordinators $list)"
  "$bin/frameflow-node" --config cluster.yaml --coordinator "$list" \
    --cert "$run/certs/$node.pem" --key "$run/certs/$node.key" --slots 1 \
    --set "node.labels=quickstart=yes" >"$run/logs/$node.log" 2>&1 &
  pids+=($!)
  i=$((i + 1))
done

ff_log "waiting for the three nodes to connect"
for i in $(seq 1 150); do
  online=$(FRAMEFLOW_URL=$a "$bin/frameflow" nodes list --json 2>/dev/null | grep -c '"state" : "online"' || true)
  [[ "$online" -ge 3 ]] && break
  sleep 0.2
done
sleep 2
FRAMEFLOW_URL=$b "$bin/frameflow" nodes list

video="$run/sample.mp4"
if [[ ! -f "$video" ]]; then
  ff_log "generating a 60-second 720p test video"
  ffmpeg -v error -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=60" \
    -f lavfi -i "sine=frequency=440:duration=60" -c:v libx264 -preset veryfast -g 60 -bf 2 \
    -pix_fmt yuv420p -c:a aac -shortest -y "$video"
fi
email="quickstart@example.com"
password='Quickstart-2026!'
curl -fsS -o /dev/null -X POST "$a/auth/register" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\",\"name\":\"Quickstart\"}" 2>/dev/null || true
token=$(curl -fsS -X POST "$a/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\"}" | sed -n 's/.*"accessToken" *: *"\([^"]*\)".*/\1/p')
[[ -n "$token" ]] || { echo "login failed" >&2; exit 1; }

# Upload through one coordinator, follow and download through the other.
mkdir -p "$run/results"
demo() {
  local up=$1 down=$2 name=$3 job status detail zip started
  started=$(date +%s.%N)
  job=$(curl -fsS -X POST "$up/videos" -H "Authorization: Bearer $token" -F "file=@$video" -F fps=1 \
    | sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')
  [[ -n "$job" ]] || { echo "upload through $up failed" >&2; exit 1; }
  ff_log "job $job uploaded through $up; following it on $down"
  status=""
  for i in $(seq 1 600); do
    detail=$(curl -fsS "$down/videos/$job" -H "Authorization: Bearer $token")
    status=$(echo "$detail" | sed -n 's/.*"status" *: *"\([A-Z]*\)".*/\1/p')
    [[ "$status" == COMPLETED || "$status" == FAILED || "$status" == CANCELLED ]] && break
    sleep 0.5
  done
  [[ "$status" == COMPLETED ]] || { echo "job ended $status: $detail" >&2; exit 1; }
  zip="$run/results/$name.zip"
  curl -fsSL -o "$zip" "$down/videos/$job/download" -H "Authorization: Bearer $token"
  ff_log "done: $(unzip -Z1 "$zip" | grep -c '^frame_') frames in $zip, downloaded from $down ($(echo "$(date +%s.%N) - $started" | bc 2>/dev/null || echo "?")s)"
}
demo "$a" "$b" sample-via-a
demo "$b" "$a" sample-via-b

cat <<INFO

Scale-out cluster running:
  coordinator A  $a   (nodes: 127.0.0.1:${listen[0]})
  coordinator B  $b   (nodes: 127.0.0.1:${listen[1]})
  database       $DATABASE_URL
  storage        $([[ -n $s3dir ]] && echo "object store $FRAMEFLOW_S3_URL, bucket frameflow-quickstart (videos, slices, ZIPs; nodes read it directly)" || echo "run/data/results")
  local data     $([[ -n $s3dir ]] && echo "run/data-a, run/data-b (each coordinator's own staging and spool; nothing shared)" || echo "run/data (shared: uploads, spool, results)")
  logs           run/logs/
  try            kill -9 ${pids[0]}   (coordinator A) and watch its nodes move to B:
                 FRAMEFLOW_URL=$b FRAMEFLOW_ADMIN_TOKEN=\$(cat run/admin-token) $bin/frameflow nodes list
INFO

if [[ "$once" == true ]]; then exit 0; fi
echo "Ctrl-C to stop."
wait "${pids[0]}"
