#!/usr/bin/env bash
# CI smoke run of the fuzz targets: builds every target, then runs each for
# a fixed number of new inputs (FUZZ_SMOKE_RUNS, default 2000) after
# replaying its seeds (fuzz/seeds/<target>) and what the long runs found
# (fuzz/found/<target>), one target at a time on one core, with a fixed
# random seed so a run repeats. Runs every target even after a failure and
# ends with the list of failed ones. Crashing inputs land in
# fuzz/artifacts/<target>/.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=inputs.sh
source inputs.sh

runs=${FUZZ_SMOKE_RUNS:-2000}
cargo +nightly fuzz build

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for source in fuzz_targets/*.rs; do
    target=$(basename "$source" .rs)
    # New inputs go to a scratch corpus; the committed seeds stay as they are.
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    start=$SECONDS
    mapfile -t dirs < <(inputs "$target")
    # libFuzzer counts the replayed inputs among its runs.
    replayed=$(find "${dirs[@]}" -type f | wc -l)
    if cargo +nightly fuzz run "$target" "$scratch/$target" "${dirs[@]}" -- \
        -runs="$((runs + replayed))" -seed=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
        echo "ok      $target ($((SECONDS - start)) s, $(grep -Eo 'cov: [0-9]+' "$log" | tail -1))"
    else
        echo "FAILED  $target"
        tail -n 40 "$log"
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz smoke: ${#failed[@]} target(s) failed: ${failed[*]}"
    exit 1
fi
echo "fuzz smoke: all targets ok"
