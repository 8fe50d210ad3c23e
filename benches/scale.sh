#!/usr/bin/env bash
# How hoard and borg 1.2 scale with the size of a repository and of an archive.
#
#   benches/scale.sh [--files "100000 1000000 3000000"] [--chunks "1000000 5000000 20000000"]
#                    [--phases "create list onelist oneextract check mount info"]
#                    [--hoard BINARY] [--borg BINARY]
#
# Two kinds of synthetic repositories (repokey, -C lz4), each made once by hoard and then
# copied, with hoard's client cache, for borg (the formats are the same, so both tools measure
# the same repository and the same, already synchronised, cache):
#
#   files N   an archive of N zero-byte files, 1000 per directory (data/dNNNN/fNNNNNNN), plus
#             one deep folder (data/deep/a/b/c/d/e/f/g/h/leaf); what grows is the item stream,
#             the files cache and the inode count of a mount.
#   chunks N  an archive of one file of N unique 64-byte chunks (`--chunker-params fixed,64`
#             over random bytes, the smallest chunks borg accepts): what grows is the chunk
#             index, the repository index and the number of objects a check reads.
#
# Phases, each measured with GNU time (wall seconds, peak RSS) for each tool:
#   create      an unchanged re-backup (after one unmeasured warm-up re-backup, so both tools
#               run with a warm files cache)
#   list        `list ARCHIVE`, output discarded
#   onelist     `list ARCHIVE PATH` of one file in the middle, run twice; the second is shown
#               (hoard's path index is built by the first)
#   oneextract  `extract ARCHIVE PATH` of the same file (after onelist)
#   check       `check` (repository and archives)
#   mount       `mount -f` until `ls` of the deep folder succeeds; RSS at unmount
#   info        `info ARCHIVE`
#
# Sizes: --files and --chunks take space-separated lists (an empty list skips that kind);
# the defaults are the full table. A small run: --files 100000 --chunks 1000000 (minutes).
# Needs: borg 1.2 (/usr/bin/borg), GNU time, python3, fusermount, a release build of hoard
# (built here unless --hoard names one). Scratch data goes to BENCH_DIR
# (default /var/tmp/hoard-scale) and is deleted at the end unless KEEP=1.
# The machine should be quiet: the time columns are only meaningful then.
set -euo pipefail

files_sizes="100000 1000000 3000000"
chunk_sizes="1000000 5000000 20000000"
phases="create list onelist oneextract check mount info"
hoard=
borg=/usr/bin/borg
while [ $# -gt 0 ]; do
  case "$1" in
    --files) files_sizes=$2; shift 2 ;;
    --chunks) chunk_sizes=$2; shift 2 ;;
    --phases) phases=$2; shift 2 ;;
    --hoard) hoard=$2; shift 2 ;;
    --borg) borg=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
if [ -z "$hoard" ]; then
  (cd "$here" && cargo build --release --quiet --bin hoard)
  hoard=$CARGO_TARGET_DIR/release/hoard
fi
[ -x "$borg" ] || { echo "borg is required ($borg)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 2; }

bench=${BENCH_DIR:-/var/tmp/hoard-scale}
rm -rf "$bench"
mkdir -p "$bench"
cleanup() {
  for m in "$bench"/mnt-*; do
    [ -d "$m" ] && { fusermount -u "$m" 2>/dev/null || true; }
  done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$bench"
}
trap cleanup EXIT

export BORG_PASSPHRASE=scale-bench
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES

results=$bench/results.txt
: >"$results"

# run TOOL-BIN BASE-DIR LABEL ARGS...: one measured command; appends "label wall rss" and
# returns its exit status (output goes to $bench/last.out).
measure() {
  local bin=$1 base=$2 label=$3
  shift 3
  local tf=$bench/time.out
  if ! BORG_BASE_DIR=$base /usr/bin/time -f "%e %M" -o "$tf" "$bin" "$@" >"$bench/last.out" 2>&1; then
    echo "FAILED: $label: $bin $*" >&2
    tail -5 "$bench/last.out" >&2
    echo "$label - -" >>"$results"
    return 0
  fi
  read -r wall rss <"$tf"
  echo "$label $wall $rss" >>"$results"
}

# mount_measure BIN BASE LABEL REPO::ARCH DEEP: mount in the foreground until DEEP lists.
mount_measure() {
  local bin=$1 base=$2 label=$3 target=$4 deep=$5
  local mnt=$bench/mnt-$$
  mkdir -p "$mnt"
  local tf=$bench/time.out start end
  rm -f "$tf"
  start=$(date +%s.%N)
  BORG_BASE_DIR=$base /usr/bin/time -f "%e %M" -o "$tf" "$bin" mount -f "$target" "$mnt" \
    >"$bench/mount.out" 2>&1 &
  local pid=$!
  local ok=0
  for _ in $(seq 1 12000); do
    if ls "$mnt/$deep" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  end=$(date +%s.%N)
  fusermount -u "$mnt" 2>/dev/null || true
  wait "$pid" || true
  if [ "$ok" = 1 ] && [ -s "$tf" ]; then
    local rss
    rss=$(awk '{print $2}' "$tf")
    echo "$label $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') $rss" >>"$results"
  else
    echo "FAILED: $label" >&2
    tail -5 "$bench/mount.out" >&2
    echo "$label - -" >>"$results"
  fi
  rmdir "$mnt" 2>/dev/null || true
}

# make_files N DIR: N zero-byte files, 1000 per directory, and the deep folder.
make_files() {
  python3 - "$1" "$2" <<'EOF'
import os, sys
n, root = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d)
    open(os.path.join(d, "f%07d" % i), "wb").close()
deep = os.path.join(root, "deep/a/b/c/d/e/f/g/h")
os.makedirs(deep)
open(os.path.join(deep, "leaf"), "wb").close()
EOF
}

# run_kind KIND N: build the repository with hoard, copy it for borg, measure every phase.
run_kind() {
  local kind=$1 n=$2
  local src=$bench/src-$kind-$n data one deep
  mkdir -p "$src"
  local create_opts=(-C lz4)
  if [ "$kind" = files ]; then
    data=$src/data
    mkdir -p "$data"
    make_files "$n" "$data"
    one=data/d$(printf %04d $((n / 2000)))/f$(printf %07d $((n / 2)))
    deep=data/deep/a/b/c/d/e/f/g/h
  else
    data=$src/data
    mkdir -p "$data"
    head -c $((n * 64)) /dev/urandom >"$data/blob"
    create_opts+=(--chunker-params fixed,64)
    one=data/blob
    deep=data
  fi
  local hbase=$bench/base-hoard-$kind-$n bbase=$bench/base-borg-$kind-$n
  local hrepo=$bench/repo-hoard-$kind-$n brepo=$bench/repo-borg-$kind-$n
  mkdir -p "$hbase"
  echo "== $kind $n: making the repository with hoard" >&2
  local t0=$SECONDS
  BORG_BASE_DIR=$hbase "$hoard" init -e repokey "$hrepo" >/dev/null 2>&1
  (cd "$src" && BORG_BASE_DIR=$hbase "$hoard" create "${create_opts[@]}" "$hrepo::a0" data)
  echo "   made in $((SECONDS - t0)) s; copying it for borg" >&2
  cp -a "$hrepo" "$brepo"
  cp -a "$hbase" "$bbase"
  local tool bin base repo
  for tool in borg hoard; do
    if [ $tool = borg ]; then bin=$borg base=$bbase repo=$brepo; else bin=$hoard base=$hbase repo=$hrepo; fi
    local lbl="$kind $n $tool"
    echo "== $lbl" >&2
    # warm-up: a re-backup that brings this tool's cache in step (not measured)
    (cd "$src" && BORG_BASE_DIR=$base "$bin" create "${create_opts[@]}" "$repo::warm" data \
      >/dev/null 2>&1) || echo "warm-up create failed for $tool" >&2
    for ph in $phases; do
      case $ph in
        create) (cd "$src" && measure "$bin" "$base" "$lbl create" create "${create_opts[@]}" "$repo::a1" data) ;;
        list) measure "$bin" "$base" "$lbl list" list "$repo::a0" ;;
        onelist)
          measure "$bin" "$base" "$lbl onelist-first" list "$repo::a0" "$one"
          cp "$bench/last.out" "$bench/onelist-$tool.out"
          measure "$bin" "$base" "$lbl onelist" list "$repo::a0" "$one"
          cmp -s "$bench/last.out" "$bench/onelist-$tool.out" \
            || echo "WARNING: $lbl: one-path list output differs between runs" >&2 ;;
        oneextract)
          local ex=$bench/extract-$tool
          rm -rf "$ex"; mkdir -p "$ex"
          (cd "$ex" && measure "$bin" "$base" "$lbl oneextract" extract "$repo::a0" "$one")
          [ -e "$ex/$one" ] || echo "WARNING: $lbl: $one was not extracted" >&2
          rm -rf "$ex" ;;
        check) measure "$bin" "$base" "$lbl check" check "$repo" ;;
        mount) mount_measure "$bin" "$base" "$lbl mount" "$repo::a0" "$deep" ;;
        info) measure "$bin" "$base" "$lbl info" info "$repo::a0" ;;
        *) echo "unknown phase $ph" >&2; exit 2 ;;
      esac
    done
  done
  rm -rf "$src" "$hrepo" "$brepo" "$hbase" "$bbase"
}

for n in $files_sizes; do run_kind files "$n"; done
for n in $chunk_sizes; do run_kind chunks "$n"; done

# The table: one row per kind, size and phase.
python3 - "$results" <<'EOF'
import sys
rows = {}
order = []
for line in open(sys.argv[1]):
    kind, n, tool, phase, wall, rss = line.split()
    key = (kind, int(n), phase)
    if key not in rows:
        rows[key] = {}
        order.append(key)
    rows[key][tool] = (wall, rss)
def cell(v, i, scale=1.0):
    if v is None or v[i] == "-":
        return "-"
    return "%.2f" % (float(v[i]) / scale) if i == 0 else "%.0f" % (float(v[i]) / scale)
print("| kind | size | phase | borg s | hoard s | hoard/borg time | borg peak RSS MiB | hoard peak RSS MiB | hoard/borg RSS |")
print("|---|---|---|---|---|---|---|---|---|")
for key in order:
    b, h = rows[key].get("borg"), rows[key].get("hoard")
    def ratio(i):
        try:
            return "%.2f" % (float(h[i]) / float(b[i]))
        except (TypeError, ValueError, ZeroDivisionError):
            return "-"
    print("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
        key[0], key[1], key[2], cell(b, 0), cell(h, 0), ratio(0),
        cell(b, 1, 1024), cell(h, 1, 1024), ratio(1)))
EOF
echo
uptime
