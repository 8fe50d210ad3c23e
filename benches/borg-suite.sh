#!/usr/bin/env bash
# Runs borg's own command-line test suite (`archiver.py::ArchiverTestCaseBinary`, which calls
# `borg.exe` from PATH) against a given binary, and prints the counts and every failure.
#
#   benches/borg-suite.sh [--borg 1.4|1.2] [--binary PATH] [-k EXPR] [-j N] [--keep DIR]
#
# --borg 1.4 (default): the suite of borg 1.4.5 from the venv at /var/tmp/borg14 (or the one
#   whose python is $HOARD_BORG14_PYTHON); pytest is installed into that venv when missing.
# --borg 1.2: the suite of Debian's borgbackup 1.2.4 (system python3; needs python3-pytest and
#   python3-pytest-xdist, installed with apt-get when missing).
# --binary: the program to test as borg.exe (default: target/release/hoard under
#   $CARGO_TARGET_DIR or ./target). Pass `borg` itself to see borg's own figures.
# -k: an extra pytest -k expression, ANDed with ArchiverTestCaseBinary.
# -j: pytest-xdist workers (default 2).
# --keep: write the full pytest log there (default: /tmp/borg-suite-SUITE-PID.log, path printed).
# Each test starts from the same environment (benches/borg_suite_envguard.py): borg 1.2.4's
# suite leaks BORG_NEW_PASSPHRASE from test_change_passphrase into later tests otherwise.
set -euo pipefail

suite=1.4
binary=""
kexpr=""
jobs=2
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --borg) suite="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    -k) kexpr="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "borg-suite.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$binary" ]; then
  binary="${CARGO_TARGET_DIR:-$here/target}/release/hoard"
fi
if [ "$binary" = borg ]; then
  binary=$(command -v borg)
fi
[ -x "$binary" ] || { echo "borg-suite.sh: $binary is not an executable (build with cargo build --release)" >&2; exit 2; }
binary=$(readlink -f "$binary")

case "$suite" in
  1.4)
    py="${HOARD_BORG14_PYTHON:-/var/tmp/borg14/bin/python}"
    [ -x "$py" ] || { echo "borg-suite.sh: no borg 1.4 venv python at $py (see .ci/run)" >&2; exit 2; }
    "$py" -c 'import pytest, xdist' 2>/dev/null || "$py" -m pip install -q pytest pytest-xdist
    ;;
  1.2)
    py=/usr/bin/python3
    "$py" -c 'import borg.testsuite.archiver, pytest, xdist' 2>/dev/null || {
      apt-get install -y -qq borgbackup python3-pytest python3-pytest-xdist python3-dateutil >/dev/null
    }
    ;;
  *) echo "borg-suite.sh: --borg takes 1.4 or 1.2" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/run"
ln -s "$binary" "$work/bin/borg.exe"
log="${keep:-${TMPDIR:-/tmp}/borg-suite-$suite-$$.log}"
mkdir -p "$(dirname "$log")"

expr="ArchiverTestCaseBinary"
[ -n "$kexpr" ] && expr="$expr and ($kexpr)"
echo "suite: borg $("$py" -c 'import borg; print(borg.__version__)') ($py)"
echo "binary: $binary ($("$binary" --version 2>&1 | head -1))"
start=$(date +%s)
set +e
(cd "$work/run" && env -u BORG_REPO -u BORG_PASSPHRASE PATH="$work/bin:$PATH" \
  PYTHONPATH="$here/benches${PYTHONPATH:+:$PYTHONPATH}" \
  "$py" -m pytest --pyargs borg.testsuite.archiver -k "$expr" -n "$jobs" -q -rfEs \
  -p no:cacheprovider -p borg_suite_envguard >"$log" 2>&1)
rc=$?
set -e
end=$(date +%s)
echo "pytest exit $rc after $((end - start)) s; log: $log"
grep -E '^(FAILED|ERROR) ' "$log" | sed 's/ - .*//' | sort || true
summary=$(grep -E '[0-9]+ (passed|failed|skipped|errors?)(,| ).* in [0-9.]+s' "$log" | tail -1)
echo "$summary"
count() { { grep -oE "[0-9]+ $1" <<<"$summary" || true; } | cut -d' ' -f1; }
passed=$(count passed)
failed=$(count failed)
skipped=$(count skipped)
echo "borg-suite: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
