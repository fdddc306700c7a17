#!/usr/bin/env bash
# rdpserve-x11 next to FreeRDP's freerdp-shadow-cli, sharing the same Xvfb
# display in the same run, each watched by an xfreerdp on a display of its
# own. For each server and each scene it reports the server's CPU%, the
# bytes/s it sent (the kernel's count for its TCP connection) and the
# screen updates/s the client painted (xfreerdp's own TRACE log: one
# EndPaint per update applied).
#
# Scenes: idle (nothing changes), small (a 120x90 window moved 30 times a
# second), full (the whole root repainted 10 times a second).
#
# Usage: bash x11/bench/vs-shadow.sh [SECONDS per scene, default 10] [RUNS, default 3]
# Needs: xvfb freerdp2-x11 freerdp2-shadow-x11 xdotool x11-xserver-utils
# x11-apps iproute2; builds rdpserve-x11 in release mode. Every process it
# starts is ended by PID. Prints medians over RUNS.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
runs=${2:-3}
size=1024x768

cargo build --release -q -p rdpserve-x11
ours=target/release/rdpserve-x11
work=$(mktemp -d)
pids=()
# Ends the processes this script started (by PID, only while they are
# still its children, so a reused PID is never hit).
stop() {
    local pid
    for pid in "$@"; do
        [[ $(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ') == "$BASHPID" ]] && { kill "$pid" 2>/dev/null || true; }
    done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
    stop "${pids[@]}"
    rm -rf "$work"
}
trap cleanup EXIT

# Starts Xvfb on a display it picks itself: sets xvfb_display (its number)
# and xvfb_pid. Extra arguments go to Xvfb.
start_xvfb() {
    local fifo="$work/displayfd.$RANDOM"
    mkfifo "$fifo"
    Xvfb -displayfd 3 -screen 0 "${size}x24" "$@" 3>"$fifo" >/dev/null 2>&1 &
    xvfb_pid=$!
    pids+=("$xvfb_pid")
    read -r xvfb_display <"$fifo"
}

# CPU ticks (user + system) a process used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Bytes the socket listening on port $1 sent on its established connection.
bytes_sent() {
    ss -tinH state established "( sport = :$1 )" |
        grep -o 'bytes_sent:[0-9]*' | head -1 | cut -d: -f2
}

# Screen updates an xfreerdp trace shows so far: one paint (BeginPaint to
# EndPaint) per update the client applied, whatever its codec.
updates() { grep -c 'from xf_sw_end_paint' "$1" 2>/dev/null || true; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The shared display listens on TCP as well: freerdp-shadow-cli 2.10 (Debian
# 12) fails to open a display over the local socket ("failed to open
# display"; its second XOpenDisplay, after XInitThreads, gets no setup
# reply) but works over TCP, where MIT-SHM cannot work. So rdpserve-x11 is
# measured both ways: on the local socket (MIT-SHM) and over TCP (GetImage,
# like for like with the shadow server).
start_xvfb -listen tcp
shared=$xvfb_display
export DISPLAY=:$shared
xsetroot -solid '#336699'
xlogo -geometry 120x90+100+100 >/dev/null 2>&1 &
pids+=($!)
sleep 1

# Scene drivers: each runs until killed.
scene_small() {
    local x=100
    while :; do
        x=$(((x + 7) % 800))
        xdotool search --name '^xlogo$' windowmove "$x" 100 >/dev/null 2>&1 || true
        sleep 0.033
    done
}
scene_full() {
    local colours=('#336699' '#993322' '#228844' '#888888')
    local i=0
    while :; do
        xsetroot -solid "${colours[i % 4]}"
        i=$((i + 1))
        sleep 0.1
    done
}

hz=$(getconf CLK_TCK)
# measure SERVER PID PORT LOG: prints "cpu% bytes/s updates/s" over $seconds.
measure() {
    local pid=$1 port=$2 log=$3
    local t0 b0 u0 t1 b1 u1
    t0=$(ticks "$pid"); b0=$(bytes_sent "$port"); u0=$(updates "$log")
    sleep "$seconds"
    t1=$(ticks "$pid"); b1=$(bytes_sent "$port"); u1=$(updates "$log")
    awk -v t="$((t1 - t0))" -v hz="$hz" -v s="$seconds" -v b="$((${b1:-0} - ${b0:-0}))" -v u="$((u1 - u0))" \
        'BEGIN { printf "%.1f %.0f %.1f\n", 100 * t / hz / s, b / s, u / s }'
}

# run_server NAME: starts it on the shared display, connects a viewer, runs
# the three scenes, prints one line per scene.
run_server() {
    local name=$1 port viewer server_pid client_pid log
    port=$(free_port)
    case $name in
    rdpserve-x11)
        "$ours" --display ":$shared" --addr "127.0.0.1:$port" --user bench --password bench \
            --security tls >"$work/$name.server.log" 2>&1 &
        ;;
    rdpserve-x11-tcp)
        "$ours" --display "127.0.0.1:$shared" --addr "127.0.0.1:$port" --user bench \
            --password bench --security tls >"$work/$name.server.log" 2>&1 &
        ;;
    freerdp-shadow-cli)
        DISPLAY=127.0.0.1:$shared freerdp-shadow-cli /bind-address:127.0.0.1 "/port:$port" \
            /sec:tls -auth >"$work/$name.server.log" 2>&1 &
        ;;
    esac
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 100); do
        ss -tlnH "( sport = :$port )" | grep -q . && break
        sleep 0.1
    done
    start_xvfb -nolisten tcp
    viewer=$xvfb_display
    local viewer_pid=$xvfb_pid
    log="$work/$name.client.log"
    DISPLAY=:$viewer xfreerdp "/v:127.0.0.1:$port" /u:bench /p:bench /cert:ignore /sec:tls \
        /bpp:32 "/size:$size" -grab-keyboard /log-level:TRACE >"$log" 2>&1 &
    client_pid=$!
    pids+=("$client_pid")
    sleep 5 # the first full frame
    local scene driver
    for scene in idle small full; do
        driver=
        case $scene in
        small) scene_small & driver=$! ;;
        full) scene_full & driver=$! ;;
        esac
        sleep 1
        echo "$name $scene $(measure "$server_pid" "$port" "$log")"
        if [[ -n $driver ]]; then stop "$driver"; fi
        sleep 1
    done
    stop "$client_pid" "$server_pid" "$viewer_pid"
}

results="$work/results"
servers=(rdpserve-x11 rdpserve-x11-tcp freerdp-shadow-cli)
for run in $(seq "$runs"); do
    for server in "${servers[@]}"; do
        run_server "$server" | tee -a "$results"
    done
done

echo
echo "medians over $runs runs of ${seconds}s, ${size} Xvfb, xfreerdp /bpp:32 over TLS:"
printf '%-20s %-6s %8s %12s %10s\n' server scene cpu% bytes/s updates/s
for server in "${servers[@]}"; do
    for scene in idle small full; do
        awk -v s="$server" -v c="$scene" '$1 == s && $2 == c { print $3, $4, $5 }' "$results" |
            sort -n >"$work/rows"
        median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
        cpu=$(cut -d' ' -f1 "$work/rows" | median)
        bytes=$(cut -d' ' -f2 "$work/rows" | median)
        frames=$(cut -d' ' -f3 "$work/rows" | median)
        printf '%-20s %-6s %8s %12s %10s\n' "$server" "$scene" "$cpu" "$bytes" "$frames"
    done
done
