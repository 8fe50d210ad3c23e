#!/bin/sh
# Demo of `hoard run`: backs up this repository's examples/ folder into a local repository
# under $HOARD_EXAMPLE_DIR (default: a new temporary folder), twice, then lists the archives.
# Usage (from a fresh clone): cargo build --release && examples/run-example.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
hoard=${HOARD:-"${CARGO_TARGET_DIR:-$root/target}/release/hoard"}
if [ ! -x "$hoard" ]; then
    echo "hoard binary not found at $hoard: run 'cargo build --release' first (or set HOARD)" >&2
    exit 2
fi

dir=${HOARD_EXAMPLE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/hoard-example.XXXXXX")}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# The job folder is copied out of the clone so the generated passphrase and key backup
# never land in the working tree.
job="$dir/local-job"
mkdir -p "$job"
cp "$here/local-job/config.yaml" "$job/config.yaml"

export HOARD_EXAMPLE_SOURCE="$here"
export HOARD_EXAMPLE_REPO="$dir/repo"
# Keep hoard's cache, keys and security data of this demo inside the demo folder.
export BORG_BASE_DIR="$dir/borg-base"
unset BORG_PASSPHRASE BORG_PASSCOMMAND BORG_PASSPHRASE_FD BORG_KEY_FILE BORG_REPO || true

echo "== first run (--init creates the repository, passphrase file and key backup) in $dir"
"$hoard" run --config "$job" --init
echo
echo "== second run"
"$hoard" run --config "$job"
echo
echo "== archives in $HOARD_EXAMPLE_REPO"
BORG_PASSCOMMAND="cat '$job/BORGKeyPassword.file'" "$hoard" list "$HOARD_EXAMPLE_REPO"
echo
echo "== job status (from $job/status.json)"
"$hoard" status "$job"
"$hoard" report "$job" --html "$dir/report.html"
echo
echo "Job folder: $job (config.yaml, BORGKey.bak, BORGKeyPassword.file, status.json, history.jsonl)"
echo "Report: $dir/report.html"
