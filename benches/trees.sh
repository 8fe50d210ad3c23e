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

# large_files_list SIZE_MB: prints large real files (over 256 KiB: the Rust toolchains' .rlib
# and .so files, shared libraries, compiler internals, executables) until SIZE_MB are reached.
# A file whose name and size were taken already (the same toolchain installed twice) is
# skipped, so the data is not one big duplicate.
large_files_list() {
  find "${RUSTUP_HOME:-$HOME/.rustup}"/toolchains /usr/lib/x86_64-linux-gnu /usr/lib/gcc \
    /usr/libexec /usr/lib /usr/bin /usr/local /opt -type f -size +256k -printf '%s %p\n' 2>/dev/null \
    | awk -v limit=$(($1 * 1024 * 1024)) '
        { name = $2; sub(/.*\//, "", name); key = name " " $1 }
        total < limit && !(key in seen) { seen[key] = 1; total += $1; sub(/^[0-9]+ /, ""); print }'
}

# many_files_list FILES: prints FILES real files of at most 256 KiB (documentation, headers,
# Rust sources, then the rest of /usr/share and /usr/lib).
many_files_list() {
  find /usr/share/doc /usr/include "${RUSTUP_HOME:-$HOME/.rustup}"/toolchains/*/lib/rustlib/src \
    /usr/share /usr/lib -type f -size -257k 2>/dev/null | awk '!seen[$0]++' | head -n "$1"
}

# copy_listed LIST DIR: copies the files named in LIST (absolute paths) below DIR.
copy_listed() {
  mkdir -p "$2"
  tar -cf - -P -T "$1" 2>/dev/null | tar -xf - -C "$2" 2>/dev/null || true
}

# large_tree WORK SIZE_MB: prints the path of a tree of large real files (large_files_list),
# building it when missing.
large_tree() {
  local tree=$1/tree-large-$2
  if [ ! -f "$tree/.complete" ]; then
    echo "building a $2 MB tree of large real files under $tree ..." >&2
    rm -rf "$tree"
    large_files_list "$2" > "$1/large-files.list"
    copy_listed "$1/large-files.list" "$tree"
    touch "$tree/.complete"
  fi
  echo "$tree"
}

# many_tree WORK FILES: prints the path of a tree of FILES real files of at most 256 KiB
# (many_files_list), building it when missing.
many_tree() {
  local tree=$1/tree-many-$2
  if [ ! -f "$tree/.complete" ]; then
    echo "building a tree of $2 real files of at most 256 KiB under $tree ..." >&2
    rm -rf "$tree"
    many_files_list "$2" > "$1/many-files.list"
    copy_listed "$1/many-files.list" "$tree"
    touch "$tree/.complete"
  fi
  echo "$tree"
}

# mixed_tree WORK SIZE_MB FILES: prints the path of a tree with SIZE_MB / 2 of large files
# and FILES / 2 small ones side by side (its own copies), building it when missing.
mixed_tree() {
  local tree=$1/tree-mixed-$2-$3
  if [ ! -f "$tree/.complete" ]; then
    echo "building a mixed tree under $tree ..." >&2
    rm -rf "$tree"
    large_files_list "$(($2 / 2))" > "$1/mixed-large.list"
    many_files_list "$(($3 / 2))" > "$1/mixed-many.list"
    copy_listed "$1/mixed-large.list" "$tree/large"
    copy_listed "$1/mixed-many.list" "$tree/small"
    touch "$tree/.complete"
  fi
  echo "$tree"
}
