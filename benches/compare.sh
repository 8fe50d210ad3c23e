#!/usr/bin/env bash
# Whole-command comparison of hoard and borg 1.2 on the same data, in the same run.
#
#   benches/compare.sh [--tree "large small mixed real"] [--cache warm|cold] [--size-mb N]
#                      [--files N] [--reps N] [--phases "create recreate extract verify"]
#                      [--hoard BINARY] [--borg BINARY]
#
# Data shapes (`--tree`, one or more, built from real files on this machine, kept under
# BENCH_DIR and reused):
#   large  files of 1 MiB or more (shared libraries, toolchain .rlib/.so, executables) until
#          `--size-mb` (default 1500) are reached;
#   small  `--files` (default 100,000) files of at most 256 KiB (documentation, headers, Rust
#          sources, then the rest of /usr);
#   mixed  half of each, side by side in one tree;
#   real   whole directories copied from /usr until `--size-mb` (a real mix of sizes).
# For each shape and repetition it runs borg and hoard alternately (order swapped every
# repetition) on fresh repositories (repokey, -C lz4) and measures every phase with GNU time:
# wall time, user and system CPU time, peak RSS. Prints, per shape, the medians and the
# hoard/borg wall ratio per phase, the cores each tool kept busy (CPU time / wall time) and
# the CPU-seconds (user+sys, and the kernel's share) each spent.
#
# Phases: create (first backup), recreate (unchanged re-backup), change1 (append a line to 1%
# of the files, then back up again), extract, check, verify (check --verify-data).
# Needs: borg, GNU time, python3, a release build of hoard (built here unless --hoard names a
# binary to measure, e.g. a debug build to compare two commits on a loaded machine).
#
# --cache: every phase starts with the same page-cache state for both tools. `warm` (default)
# reads the tree and the repository into the page cache first (borg drops the pages of the
# files it backs up with POSIX_FADV_DONTNEED, so without this whichever tool runs after borg
# reads from disk and the other from memory); `cold` drops all caches first (needs root).
#
# Environment: BENCH_DIR (default /var/tmp/hoard-bench), EXTRACT_DIR (where extract writes;
# default BENCH_DIR), SETTLE_SECONDS (pause before each tool's run, default 35). On ext4,
# creating many files soon after deleting many others is slow (the inode allocator skips
# recently freed inodes for a minute or more), which distorts extract timings of whichever tool
# runs second; EXTRACT_DIR=/dev/shm measures extract without that effect.
set -euo pipefail

trees="large small mixed"
cache_state=warm
size_mb=1500
small_files=100000
reps=3
phases="create recreate extract verify"
hoard=
borg=borg
while [ $# -gt 0 ]; do
  case "$1" in
    --tree) trees=${2//,/ }; shift 2 ;;
    --cache) cache_state=$2; shift 2 ;;
    --size-mb) size_mb=$2; shift 2 ;;
    --files) small_files=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --phases) phases=$2; shift 2 ;;
    --hoard) hoard=$2; shift 2 ;;
    --borg) borg=$2; shift 2 ;;
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
command -v "$borg" >/dev/null || { echo "borg is required (apt-get install borgbackup)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 2; }

work=${BENCH_DIR:-/var/tmp/hoard-bench}
mkdir -p "$work"
for kind in $trees; do
  case $kind in
    large|small|mixed|real) ;;
    *) echo "unknown tree kind $kind (large, small, mixed or real)" >&2; exit 2 ;;
  esac
done

export BORG_PASSPHRASE=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

# measure TOOL PHASE CMD... : appends "tool phase wall user sys rss_kb" to the results
measure() {
  local tool=$1 phase=$2; shift 2
  prepare_cache "$repo"
  /usr/bin/time -o "$work/time.$tool" -f "%e %U %S %M" "$@" >/dev/null 2>"$work/stderr.$tool" || {
    echo "$tool $phase failed:" >&2; cat "$work/stderr.$tool" >&2; exit 1; }
  read -r wall user sys rss < <(tail -1 "$work/time.$tool")
  echo -e "$tool\t$phase\t$wall\t$user\t$sys\t$rss" >> "$results"
}

# prepare_cache REPO: puts the page cache into the --cache state before a measured phase.
prepare_cache() {
  sync
  if [ "$cache_state" = cold ]; then
    echo 3 > /proc/sys/vm/drop_caches
  else
    find "$tree" "$1" -type f -print0 2>/dev/null | xargs -0 -r cat > /dev/null 2>&1 || true
  fi
}

# change_one_percent TAG: appends a line to every 100th file of the tree (sorted order), so 1% of
# the files change content, size and mtime before the next backup.
change_one_percent() {
  find "$tree" -type f ! -name '.complete*' | sort | awk 'NR % 100 == 0' | while IFS= read -r f; do
    echo "changed by $1 at $(date +%s.%N)" >> "$f"
  done
}

run_tool() {
  local tool=$1 bin=$2 rep=$3
  local base=$work/$tool-base-$rep repo=$work/$tool-repo-$rep dest=${EXTRACT_DIR:-$work}/$tool-extract-$rep
  rm -rf "$base" "$repo" "$dest"; mkdir -p "$base" "$dest"
  # Let the file system settle: ext4 avoids reusing inodes freed in the last ~30 s, so an
  # extract right after the previous run's cleanup pays for scanning past them.
  sync; sleep "${SETTLE_SECONDS:-35}"
  export BORG_BASE_DIR=$base
  "$bin" init -e repokey "$repo" >/dev/null 2>&1
  sync
  for phase in $phases; do
    case $phase in
      create)   measure "$tool" create   "$bin" create -C lz4 "$repo::first" "$tree" ;;
      recreate) measure "$tool" recreate "$bin" create -C lz4 "$repo::second" "$tree" ;;
      change1)  change_one_percent "$tool-$rep"
                measure "$tool" change1  "$bin" create -C lz4 "$repo::third" "$tree" ;;
      extract)  (cd "$dest" && measure "$tool" extract "$bin" extract "$repo::first") ;;
      check)    measure "$tool" check    "$bin" check "$repo" ;;
      verify)   measure "$tool" verify   "$bin" check --verify-data "$repo" ;;
    esac
  done
  rm -rf "$base" "$repo" "$dest"
}

# report RESULTS SHAPE: prints the table of one data shape.
report() {
  python3 - "$1" "$phases" "$2" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().splitlines() if l]
phases, shape = sys.argv[2].split(), sys.argv[3]
def med(tool, phase, f):
    v = [f(r) for r in rows if r[0] == tool and r[1] == phase]
    return statistics.median(v) if v else float('nan')
wall = lambda r: float(r[2])
cpu = lambda r: float(r[3]) + float(r[4])
sys_ = lambda r: float(r[4])
busy = lambda r: (float(r[3]) + float(r[4])) / max(float(r[2]), 0.01)
rss = lambda r: float(r[5]) / 1024
print(f"== {shape} ==")
print(f"{'phase':<9} {'borg wall':>9} {'hoard wall':>10} {'ratio':>6} {'borg busy':>9} {'hoard busy':>10}"
      f" {'borg cpu s (sys)':>17} {'hoard cpu s (sys)':>18} {'borg RSS MB':>11} {'hoard RSS MB':>12}")
for p in phases:
    bw, hw = med('borg', p, wall), med('hoard', p, wall)
    bc = f"{med('borg', p, cpu):.2f} ({med('borg', p, sys_):.2f})"
    hc = f"{med('hoard', p, cpu):.2f} ({med('hoard', p, sys_):.2f})"
    print(f"{p:<9} {bw:>9.2f} {hw:>10.2f} {hw / bw:>6.2f} {med('borg', p, busy):>9.2f}"
          f" {med('hoard', p, busy):>10.2f} {bc:>17} {hc:>18}"
          f" {med('borg', p, rss):>11.1f} {med('hoard', p, rss):>12.1f}")
PY
}

for kind in $trees; do
  case $kind in
    large) tree=$(large_tree "$work" "$size_mb") ;;
    small) tree=$(many_tree "$work" "$small_files") ;;
    mixed) tree=$(mixed_tree "$work" "$size_mb" "$small_files") ;;
    real) tree=$(real_tree "$work" "$size_mb") ;;
  esac
  files=$(find "$tree" -type f | wc -l)
  bytes=$(du -sb "$tree" | cut -f1)
  echo "$kind tree: $files files, $((bytes / 1024 / 1024)) MiB" >&2
  results=$work/results-$kind.tsv
  : > "$results"
  for rep in $(seq 1 "$reps"); do
    echo "$kind: repetition $rep/$reps" >&2
    if [ $((rep % 2)) -eq 1 ]; then
      run_tool borg "$borg" "$rep"; run_tool hoard "$hoard" "$rep"
    else
      run_tool hoard "$hoard" "$rep"; run_tool borg "$borg" "$rep"
    fi
  done
  echo "$kind: $files files, $((bytes / 1024 / 1024)) MiB, $reps repetitions (medians)" > "$work/table-$kind.txt"
  report "$results" "$kind" >> "$work/table-$kind.txt"
done

echo "load: $(uptime)"
for kind in $trees; do
  cat "$work/table-$kind.txt"
  echo
done
