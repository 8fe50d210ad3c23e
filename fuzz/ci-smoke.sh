#!/usr/bin/env bash
# CI smoke run of the fuzz targets: builds every target and runs each for a few seconds
# (default 3; HOARD_FUZZ_SMOKE_SECONDS) on its seeds, so that the targets keep building and
# the seeds and regression inputs keep passing. HOARD_FUZZ_SMOKE_SECONDS=0 only replays the
# seeds and regression inputs, without mutating them: what CI does, so that a CI run never fails
# on a new random find (in its first week a 3-second run found one in CI); finding is
# benches/fuzz.sh's job. Installs nothing: needs `cargo +nightly` (or
# HOARD_FUZZ_TOOLCHAIN) and cargo-fuzz. Fails on any crash or build error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${HOARD_FUZZ_SMOKE_SECONDS:-3}
toolchain=${HOARD_FUZZ_TOOLCHAIN:-+nightly}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/target-fuzz-nightly}
cd "$here"
# HOARD_FUZZ_SANITIZER: address (cargo-fuzz's default, as benches/fuzz.sh builds) or none (CI:
# a much shorter build; the smoke run is for building and for the regression inputs).
sanitizer=${HOARD_FUZZ_SANITIZER:-address}
cargo $toolchain fuzz build -s "$sanitizer"
bin=$CARGO_TARGET_DIR/$(rustc $toolchain -vV | sed -n 's/^host: //p')/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in $(cargo $toolchain fuzz list); do
    dirs=()
    [ -d "seeds/$t" ] && dirs+=("seeds/$t")
    mkdir -p "$work/$t"
    # Every regression input runs first, except those listed in regressions/UNFIXED
    # (`target/file` lines: crashes in modules being rewritten elsewhere, recorded for them).
    if [ -d "regressions/$t" ]; then
        for f in "regressions/$t"/*; do
            [ -f "$f" ] || continue
            if [ -f regressions/UNFIXED ] && grep -qxF "$t/$(basename "$f")" regressions/UNFIXED; then
                continue
            fi
            cp "$f" "$work/$t/"
        done
    fi
    echo "fuzz smoke: $t"
    "$bin/$t" "$work/$t" "${dirs[@]}" \
        $(if [ "$seconds" = 0 ]; then echo -runs=0; else echo -max_total_time="$seconds"; fi) \
        -jobs=1 -workers=1 \
        -rss_limit_mb=2048 -timeout=10 -malloc_limit_mb=512 \
        -artifact_prefix="$work/$t-" >"$work/$t.log" 2>&1 || {
        tail -40 "$work/$t.log"
        echo "fuzz smoke: $t FAILED" >&2
        exit 1
    }
done
echo "fuzz smoke: all targets ok"
