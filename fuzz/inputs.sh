# Sourced by plateau.sh and smoke.sh: the input directories of a fuzz
# target that exist, one per line: its seeds, then what the long runs
# found (found/<target>, kept by `./plateau.sh --save`).
inputs() {
    local dir
    for dir in "seeds/$1" "found/$1"; do
        if [[ -d $dir ]]; then echo "$dir"; fi
    done
}
