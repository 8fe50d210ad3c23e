# Test trees of real files for the benchmark scripts (sourced by compare.sh and remote.sh).
# Both scripts share the trees under $BENCH_DIR, with a marker file per size, so either reuses
# what the other built.

# real_tree WORK SIZE_MB: prints the path of a tree of whole directories copied from /usr until
# SIZE_MB are reached (a real mix of file sizes and types), building it when missing.
real_tree() {
  local tree=$1/tree size_mb=$2
  if [ ! -f "$tree/.complete-$size_mb" ]; then
    echo "building a ${size_mb} MB tree of real files under $tree ..." >&2
    rm -rf "$tree"; mkdir -p "$tree"
    local limit=$((size_mb * 1024 * 1024)) total=0 d e s dest
    for d in /usr/lib/x86_64-linux-gnu /usr/share /usr/lib/python3 /usr/lib/gcc /usr/bin /usr/lib; do
      [ -d "$d" ] || continue
      for e in "$d"/*; do
        [ "$total" -ge "$limit" ] && break 2
        s=$(du -sb "$e" 2>/dev/null | cut -f1)
        [ -z "$s" ] && continue
        dest="$tree/$(echo "$d" | tr / _)"
        mkdir -p "$dest"
        cp -a "$e" "$dest/" 2>/dev/null || true
        total=$((total + s))
      done
    done
    touch "$tree/.complete-$size_mb"
  fi
  echo "$tree"
}

# small_tree WORK FILES: prints the path of a tree of the first FILES real files under 32 KiB
# from /usr/share, /usr/include, /usr/lib and the Rust toolchain, building it when missing.
small_tree() {
  local tree=$1/tree-small files=$2
  if [ ! -f "$tree/.complete-$files" ]; then
    echo "building a tree of $files small real files under $tree ..." >&2
    rm -rf "$tree"; mkdir -p "$tree"
    find /usr/share /usr/include /usr/lib "${RUSTUP_HOME:-$HOME/.rustup}" -type f -size -32k 2>/dev/null \
      | head -n "$files" > "$1/small-files.list"
    tar -cf - -P -T "$1/small-files.list" 2>/dev/null | tar -xf - -C "$tree" 2>/dev/null || true
    touch "$tree/.complete-$files"
  fi
  echo "$tree"
}
