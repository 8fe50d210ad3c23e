#!/usr/bin/env bash
# Initial backup over ssh, three ways, on the same tree in the same run:
#   borg client  -> borg serve      (the reference)
#   hoard client -> borg serve
#   hoard client -> hoard serve     (a release build of this tree, or --hoard BINARY)
#
#   benches/remote.sh [--size-mb N] [--reps N] [--latency-ms N] [--latency-size-mb N] [--no-latency]
#                     [--phases "create extract"] [--hoard BINARY]
#
# A private sshd (own config, host key and client key, 127.0.0.1, a free port) is started for
# the run; nothing of the system's ssh setup is read or changed. Each run uses a fresh
# repository (repokey, -C lz4) and a fresh client cache. Measured with GNU time: wall time, CPU
# (user+sys) and peak RSS of the client, and CPU and peak RSS of the `serve` process (the
# remote path is a wrapper that runs `serve` under GNU time). The client's CPU includes its ssh
# child's, which is also shown alone ("of it ssh", BORG_RSH runs ssh under GNU time). "machine
# cpu" is the CPU time the whole machine was busy during the run (from /proc/stat: client, ssh,
# sshd, serve and the kernel's network work); "floor" is that divided by the number of cores,
# the shortest wall time that much CPU allows when client and server share the machine.
#
# Then the same on a smaller tree with network latency (--latency-ms round trip, default 20):
# preferably sshd runs in its own network namespace behind a veth pair with `tc netem` delay
# on both ends; where netem is not available (no sch_netem in the kernel, e.g. in containers)
# ssh goes through a user-space ProxyCommand that delays every byte by half the RTT in each
# direction (what the protocol sees: every reply arrives one RTT after its request; there is no
# TCP congestion window at that RTT). The script says which one it used.
#
# The tree is the one benches/compare.sh builds (reused if present under $BENCH_DIR, default
# /var/tmp/hoard-bench). Everything the run creates (sshd, namespace, veth, repositories) is
# removed on exit, also on Ctrl-C. EXTRACT_DIR (e.g. /dev/shm) is where extract writes: on ext4,
# creating many files soon after deleting many is slow, which would distort the later runs.
set -euo pipefail

size_mb=1100
reps=1
latency_ms=20
lat_size_mb=200
do_latency=1
phases="create extract"
hoard=
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) size_mb=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --latency-ms) latency_ms=$2; shift 2 ;;
    --latency-size-mb) lat_size_mb=$2; shift 2 ;;
    --no-latency) do_latency=0; shift ;;
    --phases) phases=$2; shift 2 ;;
    --hoard) hoard=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/benches/trees.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
if [ -z "$hoard" ]; then
  (cd "$here" && cargo build --release --quiet --bin hoard)
  hoard=$CARGO_TARGET_DIR/release/hoard
fi
command -v borg >/dev/null || { echo "borg is required (apt-get install borgbackup)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 2; }
[ -x /usr/sbin/sshd ] || { echo "sshd is required (apt-get install openssh-server)" >&2; exit 2; }
command -v ssh >/dev/null || { echo "ssh is required (apt-get install openssh-client)" >&2; exit 2; }
borg_bin=$(command -v borg)

work=${BENCH_DIR:-/var/tmp/hoard-bench}
mkdir -p "$work"
tree=$(real_tree "$work" "$size_mb")

run=$(mktemp -d "$work/remote.XXXXXX")
sshd_pid=
ns=hrb$$
veth=hrb$$a
cleanup() {
  set +e
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
  if ip netns list 2>/dev/null | grep -q "^$ns\b"; then ip netns del "$ns"; fi
  ip link del "$veth" 2>/dev/null
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A smaller tree for the latency runs: hard links to whole entries of the big tree.
lat_tree=$run/tree-lat
if [ "$do_latency" = 1 ]; then
  mkdir -p "$lat_tree"
  limit=$((lat_size_mb * 1024 * 1024)); total=0
  for e in "$tree"/*/*; do
    [ "$total" -ge "$limit" ] && break
    s=$(du -sb "$e" 2>/dev/null | cut -f1)
    [ -z "$s" ] && continue
    dest="$lat_tree/$(basename "$(dirname "$e")")"
    mkdir -p "$dest"
    cp -al "$e" "$dest/" 2>/dev/null || cp -a "$e" "$dest/"
    total=$((total + s))
  done
fi

# --- private sshd -------------------------------------------------------------------------
sshdir=$run/ssh
mkdir -p "$sshdir" "$run/serverbase" "$run/bin"
ssh-keygen -q -t ed25519 -N '' -C hoard-bench -f "$sshdir/host_key"
ssh-keygen -q -t ed25519 -N '' -C hoard-bench -f "$sshdir/client_key"
cp "$sshdir/client_key.pub" "$sshdir/authorized_keys"
user=$(id -un)
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_sshd ADDR [NETNS]: starts the private sshd listening on ADDR; sets sshd_pid, port.
start_sshd() {
  local addr=$1 netns=${2:-}
  port=$(free_port)
  cat > "$sshdir/sshd_config" <<EOF
Port $port
ListenAddress $addr
HostKey $sshdir/host_key
PidFile $sshdir/sshd.pid
AuthorizedKeysFile $sshdir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
AllowUsers $user
LogLevel ERROR
MaxStartups 100
SetEnv BORG_BASE_DIR=$run/serverbase LANG=C.UTF-8
EOF
  if [ -n "$netns" ]; then
    ip netns exec "$netns" /usr/sbin/sshd -D -e -f "$sshdir/sshd_config" 2>"$sshdir/sshd.log" &
  else
    /usr/sbin/sshd -D -e -f "$sshdir/sshd_config" 2>"$sshdir/sshd.log" &
  fi
  sshd_pid=$!
  for _ in $(seq 100); do
    if python3 -c "import socket,sys; socket.create_connection(('$addr',$port),1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "sshd did not start:" >&2; cat "$sshdir/sshd.log" >&2; exit 1
}

stop_sshd() {
  if [ -n "$sshd_pid" ]; then
    kill "$sshd_pid" 2>/dev/null || true
    wait "$sshd_pid" 2>/dev/null || true
  fi
  sshd_pid=
}

rsh_base="ssh -F /dev/null -i $sshdir/client_key -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"

# `serve` under GNU time: the remote path of every run (the server's CPU and RSS).
for tool in borg hoard; do
  bin=$borg_bin; [ "$tool" = hoard ] && bin=$hoard
  cat > "$run/bin/serve-$tool" <<EOF
#!/bin/sh
exec /usr/bin/time -o "$run/serve.time" -f "%e %U %S %M" "$bin" "\$@"
EOF
  chmod +x "$run/bin/serve-$tool"
done

# The client's ssh under GNU time (its CPU is also part of the client's, as its child's).
cat > "$run/bin/timed-rsh" <<EOF
#!/bin/sh
exec /usr/bin/time -o "$run/ssh.time" -f "%e %U %S %M" "\$@"
EOF
chmod +x "$run/bin/timed-rsh"

# busy_ticks: clock ticks the whole machine spent busy so far (all of /proc/stat's cpu line
# but idle and iowait): the CPU of sshd and the kernel's network work, which no process's
# GNU time shows, is in the difference.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
tick_hz=$(getconf CLK_TCK)

# A user-space delay line for ssh's ProxyCommand: HOST PORT ONE_WAY_MS.
cat > "$run/delayproxy.py" <<'PY'
import collections, os, socket, sys, threading, time
host, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000.0
sock = socket.create_connection((host, port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

def line(read, write, finish):
    q, cv = collections.deque(), threading.Condition()
    def reader():
        while True:
            try:
                d = read(1 << 16)
            except OSError:
                d = b""
            with cv:
                q.append((time.monotonic() + delay, d)); cv.notify()
            if not d:
                return
    def writer():
        while True:
            with cv:
                while not q:
                    cv.wait()
                due, d = q.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not d:
                finish(); return
            try:
                write(d)
            except OSError:
                finish(); return
    threading.Thread(target=reader, daemon=True).start()
    t = threading.Thread(target=writer); t.start(); return t

def write_stdout(d):
    while d:
        n = os.write(1, d); d = d[n:]

def shut_wr():
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass

line(lambda n: os.read(0, n), sock.sendall, shut_wr)
down = line(sock.recv, write_stdout, lambda: os.close(1))
down.join()
os._exit(0)
PY

results=$run/results.tsv
: > "$results"

# timed FILE CMD...: runs CMD under GNU time (report in FILE); on failure shows its stderr.
timed() {
  local file=$1; shift
  rm -f "$run/serve.time" "$run/ssh.time"
  local before
  before=$(busy_ticks)
  /usr/bin/time -o "$file" -f "%e %U %S %M" "$@" >/dev/null 2>"$run/stderr" || {
    echo "failed: $*" >&2; cat "$run/stderr" >&2; return 1; }
  # the server's time file is written when serve exits, right after the client
  for _ in $(seq 50); do [ -s "$run/serve.time" ] && break; sleep 0.1; done
  echo "scale=2; ($(busy_ticks) - $before) / $tick_hz" | bc > "$run/machine.cpu"
}

# row SCENARIO PHASE LABEL: appends the client's and the server's figures of the last phase.
row() {
  local wall user sys rss suser ssys srss huser hsys
  read -r wall user sys rss < <(tail -1 "$run/client.time")
  read -r _ suser ssys srss < <(tail -1 "$run/serve.time" 2>/dev/null || echo "nan 0 0 0")
  read -r _ huser hsys _ < <(tail -1 "$run/ssh.time" 2>/dev/null || echo "nan 0 0 0")
  echo -e "$1\t$2\t$3\t$wall\t$(echo "$user + $sys" | bc)\t$rss\t$(echo "$suser + $ssys" | bc)\t$srss\t$(echo "$huser + $hsys" | bc)\t$(cat "$run/machine.cpu")" >> "$results"
}

# measure SCENARIO LABEL CLIENT SERVER URLBASE SRC [RSH]: one initial backup (and, when
# $phases has it, an extract of it), appends rows.
measure() {
  local scenario=$1 label=$2 client=$3 server=$4 urlbase=$5 src=$6 rsh="$run/bin/timed-rsh ${7:-$rsh_base}"
  local base=$run/base-$label repo=repos/$label-$RANDOM dest=${EXTRACT_DIR:-$run}/extract-$label
  rm -rf "$base" "$dest"; mkdir -p "$base" "$dest" "$run/repos"
  sync; sleep "${SETTLE_SECONDS:-5}"
  (
    export BORG_BASE_DIR=$base BORG_PASSPHRASE=bench BORG_RSH=$rsh
    export BORG_REMOTE_PATH=$run/bin/serve-$server
    export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
    "$client" init -e repokey "$urlbase/$repo" >/dev/null 2>"$run/stderr" || {
      echo "$label: init failed:" >&2; cat "$run/stderr" >&2; exit 1; }
    timed "$run/client.time" "$client" create -C lz4 "$urlbase/$repo::first" "$src"
    row "$scenario" create "$label"
    case " $phases " in
      *" extract "*)
        sync
        (cd "$dest" && timed "$run/client.time" "$client" extract "$urlbase/$repo::first")
        row "$scenario" extract "$label" ;;
    esac
  )
  rm -rf "$run/repos" "$base" "$dest"
}

# run_scenario NAME URLBASE SRC [RSH]: the three combinations, order rotated per repetition.
run_scenario() {
  local name=$1 urlbase=$2 src=$3 rsh=${4:-$rsh_base}
  local combos=("borg-borg $borg_bin borg" "hoard-borg $hoard borg" "hoard-hoard $hoard hoard")
  for rep in $(seq 1 "$reps"); do
    echo "$name: repetition $rep/$reps" >&2
    for i in 0 1 2; do
      read -r label client server <<< "${combos[$(( (i + rep - 1) % 3 ))]}"
      measure "$name" "$label" "$client" "$server" "$urlbase" "$src" "$rsh"
    done
  done
}

files=$(find "$tree" -type f | wc -l); bytes=$(du -sb "$tree" | cut -f1)
echo "tree: $files files, $((bytes / 1024 / 1024)) MiB" >&2
start_sshd 127.0.0.1
run_scenario "loopback" "ssh://$user@127.0.0.1:$port$run" "$tree"
stop_sshd

latency_mode=none
if [ "$do_latency" = 1 ]; then
  lfiles=$(find "$lat_tree" -type f | wc -l); lbytes=$(du -sb "$lat_tree" | cut -f1)
  echo "latency tree: $lfiles files, $((lbytes / 1024 / 1024)) MiB, ${latency_ms} ms RTT" >&2
  half=$(echo "scale=3; $latency_ms / 2" | bc)
  # Preferred: sshd in a network namespace behind a veth pair with netem on both ends.
  if ip netns add "$ns" 2>/dev/null \
    && ip link add "$veth" type veth peer name "${veth%a}b" 2>/dev/null \
    && ip link set "${veth%a}b" netns "$ns" \
    && ip addr add 10.213.7.1/30 dev "$veth" && ip link set "$veth" up \
    && ip netns exec "$ns" ip addr add 10.213.7.2/30 dev "${veth%a}b" \
    && ip netns exec "$ns" ip link set "${veth%a}b" up \
    && ip netns exec "$ns" ip link set lo up \
    && tc qdisc add dev "$veth" root netem delay "${half}ms" 2>/dev/null \
    && ip netns exec "$ns" tc qdisc add dev "${veth%a}b" root netem delay "${half}ms" 2>/dev/null; then
    latency_mode="netns + veth + tc netem (${half} ms each way)"
    start_sshd 10.213.7.2 "$ns"
    run_scenario "rtt${latency_ms}ms" "ssh://$user@10.213.7.2:$port$run" "$lat_tree"
    stop_sshd
  else
    # No netem here: fall back to the ProxyCommand delay line on the loopback sshd.
    if ip netns list 2>/dev/null | grep -q "^$ns\b"; then ip netns del "$ns"; fi
    ip link del "$veth" 2>/dev/null || true  # usually gone with the namespace already
    latency_mode="user-space ProxyCommand delay line (${half} ms each way; tc netem unavailable)"
    start_sshd 127.0.0.1
    rsh_lat="$rsh_base -o ProxyCommand=\"python3 $run/delayproxy.py 127.0.0.1 $port $half\""
    run_scenario "rtt${latency_ms}ms" "ssh://$user@127.0.0.1:$port$run" "$lat_tree" "$rsh_lat"
    stop_sshd
  fi
  echo "latency: $latency_mode" >&2
fi

python3 - "$results" <<'PY'
import os, statistics, sys
ncpu = os.cpu_count()
rows = [l.split('\t') for l in open(sys.argv[1]).read().splitlines() if l]
def med(sc, phase, label, col):
    v = [float(r[col]) for r in rows if r[0] == sc and r[1] == phase and r[2] == label]
    return statistics.median(v) if v else float('nan')
for sc in dict.fromkeys(r[0] for r in rows):
    for phase in dict.fromkeys(r[1] for r in rows if r[0] == sc):
        print(f"\n== {phase}, {sc} ==")
        print(f"{'client -> server':<14} {'wall s':>8} {'vs borg':>8} {'client cpu':>11} {'of it ssh':>10} {'client RSS MB':>14} {'serve cpu':>10} {'serve RSS MB':>13} {'machine cpu':>12} {'floor s':>8}")
        ref = med(sc, phase, 'borg-borg', 3)
        for label in ('borg-borg', 'hoard-borg', 'hoard-hoard'):
            w = med(sc, phase, label, 3)
            m = med(sc, phase, label, 9)
            print(f"{label:<14} {w:>8.2f} {w / ref:>8.2f} {med(sc, phase, label, 4):>11.2f} {med(sc, phase, label, 8):>10.2f} {med(sc, phase, label, 5) / 1024:>14.1f} {med(sc, phase, label, 6):>10.2f} {med(sc, phase, label, 7) / 1024:>13.1f} {m:>12.2f} {m / ncpu:>8.2f}")
PY
