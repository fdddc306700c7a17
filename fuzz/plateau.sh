#!/usr/bin/env bash
# Runs fuzz targets long enough to see their coverage plateau and prints one
# Markdown row per target: executions, executions per second, coverage
# (libFuzzer's `cov`, edges, from the seeds' to the end, and `ft`,
# features), corpus size, and when the last new edge and the last new
# feature were found, in seconds and in executions. A target whose last new
# edge came early in a long run has plateaued; one still finding edges near
# the end needs a longer run.
#
#   ./plateau.sh                       every target, 120 s each
#   FUZZ_SECONDS=600 ./plateau.sh engine_active engine_start
#   FUZZ_PARALLEL=2 ./plateau.sh       two targets at a time
#   FUZZ_SUMMARY_ONLY=1 ./plateau.sh   the table again from the last logs
#   FUZZ_SANITIZER=none ./plateau.sh   without AddressSanitizer
#
# FUZZ_SANITIZER=none about doubles the executions per second. The core
# forbids `unsafe`, so AddressSanitizer only watches the dependencies
# there; such a run builds into target/nosan (the ASan build stays), and
# `./plateau.sh --asan-check TARGET...` then replays every corpus input
# through the ASan build once.
#
# New inputs go to corpus/<target> (not committed) on top of the seeds and
# of found/<target>, so a second run continues where the first stopped.
# `./plateau.sh --save [TARGET...]` keeps what the runs found in the
# repository: it replaces found/<target> with few inputs of corpus/<target>
# and found/<target> that reach every feature the seeds do not (libFuzzer's
# -set_cover_merge=1), so the next machine starts there. Crashes land in
# artifacts/<target>/ and are listed in the last column. Logs, with a
# wall-clock second in front of each line, stay in $FUZZ_LOGS
# (default target/plateau).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-120}
parallel=${FUZZ_PARALLEL:-1}
logs=${FUZZ_LOGS:-target/plateau}
mkdir -p "$logs"
build=()
if [[ ${FUZZ_SANITIZER:-address} != address ]]; then
    build=(-s "$FUZZ_SANITIZER" --target-dir "target/nosan")
fi
export FUZZ_BUILD="${build[*]}"

mode=run
case ${1:-} in
--asan-check) mode=asan-check; shift ;;
--save) mode=save; shift ;;
esac
if (($# == 0)); then
    set -- $(basename -s .rs fuzz_targets/*.rs)
fi

# shellcheck source=inputs.sh
source inputs.sh
export -f inputs

if [[ $mode == save ]]; then
    # The seeds go into a scratch directory first, so the merge copies in
    # only inputs that reach a feature the seeds do not; then the seeds
    # come out again.
    for target in "$@"; do
        cargo +nightly fuzz build "${build[@]}" "$target" >&2
        merged=$(mktemp -d)
        cp "seeds/$target"/* "$merged/"
        mkdir -p "corpus/$target" "found/$target"
        cargo +nightly fuzz run "${build[@]}" "$target" "$merged" \
            "found/$target" "corpus/$target" -- \
            -set_cover_merge=1 -timeout=10 -rss_limit_mb=2048 >"$logs/$target.save.log" 2>&1
        for seed in "seeds/$target"/*; do
            rm -f "$merged/$(basename "$seed")"
        done
        rm -rf "found/$target"
        mv "$merged" "found/$target"
        chmod 755 "found/$target"
        echo "saved   $target: $(find "found/$target" -type f | wc -l) inputs," \
            "$(find "found/$target" -type f -exec cat {} + | wc -c) bytes"
    done
    exit 0
fi
if [[ $mode == asan-check ]]; then
    # Every input of each corpus once through the AddressSanitizer build.
    cargo +nightly fuzz build >&2
    failed=0
    for target in "$@"; do
        log="$logs/$target.asan.log"
        mkdir -p "corpus/$target"
        # shellcheck disable=SC2046 # one word per directory
        if cargo +nightly fuzz run "$target" "corpus/$target" $(inputs "$target") -- \
            -runs=0 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
            echo "ok      $target: $(grep -Eo 'INITED.*' "$log" | tail -1)"
        else
            echo "FAILED  $target (see $log)"
            failed=1
        fi
    done
    exit "$failed"
fi
if [[ -z ${FUZZ_SUMMARY_ONLY:-} ]]; then
    # One target at a time: without a sanitizer's runtime the crate's other
    # binary (seed_corpus) does not link.
    for target in "$@"; do
        cargo +nightly fuzz build "${build[@]}" "$target" >&2
    done
fi

# One Markdown row from a target's log. libFuzzer counts coverage twice:
# `cov` (edges reached) and `ft` (features: edges with hit counts, and
# more). Edges stop growing first; features creep up for long after, so the
# row gives when each last grew, counted from the fuzzer's start (its INITED
# line), not counting time spent building the target.
summarize() {
    local target=$1 log=$2 crashes
    crashes=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
    awk -v target="$target" -v crashes="$crashes" '
        function field(name,   i) {
            for (i = 1; i < NF; i++) if ($i == name) return $(i + 1) + 0
            return -1
        }
        $2 ~ /^#[0-9]+$/ && ($3 == "INITED" || $3 == "NEW" || $3 == "REDUCE" || $3 == "pulse" || $3 == "DONE") {
            execs = substr($2, 2) + 0
            cov = field("cov:"); ft = field("ft:")
            corp = $0; sub(/.*corp: /, "", corp); sub(/\/.*/, "", corp)
            if ($3 == "INITED") { t0 = $1; cov0 = cov }
            if (cov > best_cov) { best_cov = cov; edge_t = $1 - t0; edge_n = execs }
            times[++lines] = $1 - t0; covs[lines] = best_cov
            if (ft > best_ft) { best_ft = ft; ft_t = $1 - t0; ft_n = execs }
            last_t = $1
        }
        /stat::number_of_executed_units:/ { total = $NF }
        /stat::average_exec_per_sec:/ { rate = $NF }
        END {
            # Edges found in the second half and in the last quarter.
            half = cov0; quarter = cov0
            for (i = 1; i <= lines; i++) {
                if (times[i] <= (last_t - t0) / 2) half = covs[i]
                if (times[i] <= (last_t - t0) * 3 / 4) quarter = covs[i]
            }
            printf "| %s | %d | %s | %s | %d -> %d | +%d | +%d | %d | %s | %d s (#%d) | %d s (#%d) | %d |\n",
                target, last_t - t0, total, rate, cov0, best_cov, best_cov - half, best_cov - quarter, best_ft, corp,
                edge_t, edge_n, ft_t, ft_n, crashes
        }' "$log"
}
export -f summarize

run_one() {
    local target=$1 seconds=$2 logs=$3
    local log="$logs/$target.log"
    mkdir -p "corpus/$target" "artifacts/$target"
    local start=$SECONDS
    # The `while read` stamps each line with the seconds since the start.
    # shellcheck disable=SC2086 # FUZZ_BUILD is a list of words.
    # shellcheck disable=SC2046 # one word per directory
    cargo +nightly fuzz run $FUZZ_BUILD "$target" "corpus/$target" $(inputs "$target") -- \
        -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        while IFS= read -r line; do
            printf '%d %s\n' "$((SECONDS - start))" "$line"
        done >"$log" || true
    summarize "$target" "$log"
}
export -f run_one

echo '| target | s fuzzed | executions | exec/s | cov (edges) | edges in 2nd half | in last quarter | ft | corpus | last new edge | last new feature | crashes |'
echo '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
if [[ ${FUZZ_SUMMARY_ONLY:-} ]]; then
    # Rows from the logs of an earlier run, without fuzzing again.
    for target in "$@"; do
        if [[ -f $logs/$target.log ]]; then
            summarize "$target" "$logs/$target.log"
        fi
    done
    exit 0
fi
printf '%s\n' "$@" | xargs -P "$parallel" -I{} bash -c 'run_one "$@"' _ {} "$seconds" "$logs"
