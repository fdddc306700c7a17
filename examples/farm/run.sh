#!/usr/bin/env bash
# Starts the example farm: three rdpserve members on 127.0.0.2-4:3389 and
# HAProxy on 127.0.0.1:3389 in front of them (docs/farm.md). Ctrl-C stops
# all four. Connect with:
#   xfreerdp /v:127.0.0.1 /u:demo /p:demo /cert:ignore
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p rdpserve-examples --bin farm
state=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$state"' EXIT
for index in 0 1 2; do
    target/release/farm --addr "127.0.0.$((index + 2)):3389" --index "$index" \
        --state-dir "$state" &
    pids+=($!)
done
haproxy -f examples/farm/haproxy.cfg -db &
pids+=($!)
wait -n
