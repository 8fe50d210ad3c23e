#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after the other and prints a table:
# target, seconds, executions, coverage (cov/ft of libFuzzer's last stat line), crashes.
#
#   benches/fuzz.sh [--seconds N] [--no-build] [TARGET...]     (default: 60 s, every target)
#
# One target at a time, in-process (no -jobs: libFuzzer's job mode writes every job's output
# to ./fuzz-N.log, which parallel runs of this script would share), with the limits of issue 15:
# -rss_limit_mb=2048 -timeout=10 -malloc_limit_mb=512. Each target's corpus grows in
# $HOARD_FUZZ_CORPUS/<target> (default /var/tmp/hoard-fuzz-corpus), seeded from
# fuzz/seeds/<target>; crashing inputs land in fuzz/artifacts/<target>/ and their count is the
# crashes column. Logs: $HOARD_FUZZ_CORPUS/<target>.log. Needs `cargo +nightly` and
# cargo-fuzz (`cargo install cargo-fuzz`).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=60
build=1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/target-fuzz-nightly}
corpus_root=${HOARD_FUZZ_CORPUS:-/var/tmp/hoard-fuzz-corpus}
toolchain=${HOARD_FUZZ_TOOLCHAIN:-+nightly}
cd "$here/fuzz" || exit 1
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo $toolchain fuzz list)
fi
if [ $build -eq 1 ]; then
    cargo $toolchain fuzz build || exit 1
fi
mkdir -p "$corpus_root"
bin=$CARGO_TARGET_DIR/$(rustc $toolchain -vV | sed -n 's/^host: //p')/release
printf '%-18s %8s %12s %14s %8s\n' target seconds executions coverage crashes
status=0
for t in "${targets[@]}"; do
    corpus="$corpus_root/$t"
    mkdir -p "$corpus" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    log="$corpus_root/$t.log"
    start=$(date +%s)
    # the built binary is run directly: `cargo fuzz run` would rebuild first
    "$bin/$t" "$corpus" "${seeds[@]}" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$seconds" \
        -rss_limit_mb=2048 -timeout=10 -malloc_limit_mb=512 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    after=$(find "artifacts/$t" -type f | wc -l)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | sed -E 's/cov: ([0-9]+) ft: ([0-9]+)/\1\/\2/')
    crashes=$((after - before))
    [ $rc -ne 0 ] && [ $crashes -eq 0 ] && crashes="rc=$rc"
    [ $rc -ne 0 ] && status=1
    printf '%-18s %8s %12s %14s %8s\n' "$t" "$took" "${execs:-?}" "${cov:-?}" "$crashes"
done
exit $status
