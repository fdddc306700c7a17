#!/usr/bin/env bash
# Runs fuzz targets long enough to see their coverage plateau and prints one
# Markdown row per target: executions, executions per second, coverage
# (libFuzzer's `cov`, edges, and `ft`, features), corpus size, and when the
# last new coverage was found, in seconds and in executions. A target whose
# last new input came early in a long run has plateaued; one still finding
# inputs near the end needs a longer run.
#
#   ./plateau.sh                       every target, 120 s each
#   FUZZ_SECONDS=600 ./plateau.sh engine_active engine_start
#   FUZZ_PARALLEL=2 ./plateau.sh       two targets at a time
#
# New inputs go to corpus/<target> (not committed) on top of the seeds, so
# a second run continues where the first stopped. Crashes land in
# artifacts/<target>/ and are listed in the last column. Logs, with a
# wall-clock second in front of each line, stay in $FUZZ_LOGS
# (default target/plateau).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-120}
parallel=${FUZZ_PARALLEL:-1}
logs=${FUZZ_LOGS:-target/plateau}
mkdir -p "$logs"

cargo +nightly fuzz build >&2

if (($# == 0)); then
    set -- $(basename -s .rs fuzz_targets/*.rs)
fi

run_one() {
    local target=$1 seconds=$2 logs=$3
    local log="$logs/$target.log"
    mkdir -p "corpus/$target" "artifacts/$target"
    local start=$SECONDS
    # The `while read` stamps each line with the seconds since the start.
    cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        while IFS= read -r line; do
            printf '%d %s\n' "$((SECONDS - start))" "$line"
        done >"$log" || true
    local last execs rate cov ft corpus new_at new_execs crashes
    last=$(grep -E '#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|DONE|INITED)' "$log" | tail -1)
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
    rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
    cov=$(grep -Eo 'cov: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || echo '?')
    ft=$(grep -Eo 'ft: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || echo '?')
    corpus=$(grep -Eo 'corp: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || echo '?')
    # The last line that found new coverage (NEW), in seconds and executions.
    local newest
    newest=$(grep -E '#[0-9]+[[:space:]]+NEW' "$log" | tail -1 || true)
    new_at=$(awk '{print $1}' <<<"$newest")
    new_execs=$(grep -Eo '#[0-9]+' <<<"$newest" | tr -d '#')
    crashes=$(find "artifacts/$target" -type f | wc -l)
    printf '| %s | %d | %s | %s | %s | %s | %s | %s s (#%s) | %s |\n' \
        "$target" "$((SECONDS - start))" "$execs" "$rate" "$cov" "$ft" "$corpus" \
        "${new_at:-0}" "${new_execs:-0}" "$crashes"
}
export -f run_one

echo '| target | s | executions | exec/s | cov | ft | corpus | last new coverage | crashes |'
echo '| --- | --- | --- | --- | --- | --- | --- | --- | --- |'
printf '%s\n' "$@" | xargs -P "$parallel" -I{} bash -c 'run_one "$@"' _ {} "$seconds" "$logs"
