#!/usr/bin/env bash
# A swarm of Rivulets (issue 18's goal 3): one seeder and 16 leechers of a 256 MiB torrent,
# against one leecher alone from the same seeder, in one run.
#
#   cargo build --release && bash benches/swarm.sh
#
# Rivulet's tracker on 127.0.0.1; one Rivulet seeder limited to 8 MiB/s upload (a seeder's
# uplink; unlimited, on two cores, the seeder alone could feed everyone as fast as the CPU
# copies, and the run would measure the CPU shared by 17 processes, not the swarm). Steps:
#   1. one leecher alone, BENCH_RUNS times (default 2): its time from start to "complete";
#   2. 16 leechers started together (`download --seed`, so a finished one goes on serving
#      the others, as a user's client does): each one's time to "complete", and the last.
# Every download is compared with the original. The seeder is stopped after each step and
# says exactly what it uploaded: in the swarm, ideally little more than one copy, the
# leechers trading the rest among themselves.
# Target: the last of the 16 finishes in <= 2x the median time of one leecher alone.
#
# Environment: RIVULET_BIN (default target/release/rivulet), BENCH_SIZE_MIB (256),
# BENCH_LEECHERS (16), BENCH_SEED_LIMIT_KIB (8192), BENCH_RUNS (2), BENCH_KEEP=1 keeps the
# work folder. Everything stays on loopback.
set -euo pipefail

BIN=$(realpath "${RIVULET_BIN:-target/release/rivulet}")
SIZE_MIB=${BENCH_SIZE_MIB:-256}
LEECHERS=${BENCH_LEECHERS:-16}
LIMIT=${BENCH_SEED_LIMIT_KIB:-8192}
RUNS=${BENCH_RUNS:-2}
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"' EXIT
NET=(--bind 127.0.0.1 --no-dht --no-lsd --no-port-mapping --transport tcp)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

mkdir -p "$W/data"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/data/payload.bin"
TPORT=$(free_port)
"$BIN" tracker --port "$TPORT" --bind 127.0.0.1 --open --interval 30 > "$W/tracker.log" 2>&1 &
sleep 0.5
"$BIN" create "$W/data/payload.bin" -o "$W/t.torrent" --tracker "http://127.0.0.1:$TPORT/announce" \
    --piece-length 262144 > /dev/null

# Starts the seeder; sets SEEDER.
start_seeder() {
    local log=$W/seeder-$1.log
    rm -rf "$W/seed-state"
    : > "$log"
    "$BIN" seed "$W/t.torrent" "$W/data" --port "$(free_port)" --state-dir "$W/seed-state" \
        --upload-limit "$LIMIT" "${NET[@]}" > "$log" 2>&1 &
    SEEDER=$!
    for _ in $(seq 1 300); do
        grep -q "Seeding" "$log" && return 0
        sleep 0.1
    done
    echo "the seeder did not start: $(tail -3 "$log")" >&2
    exit 1
}

# Stops the seeder and prints the bytes it uploaded.
stop_seeder() {
    kill -TERM "$SEEDER"
    wait "$SEEDER" 2>/dev/null || true
    sed -n 's/.*uploaded .* (\([0-9]*\) bytes)$/\1/p' "$W/seeder-$1.log" | tail -1
}

# Starts `count` leechers at once and waits until each has said "complete"; prints each one's
# seconds since the start, in the order they finished.
leech() {
    local step=$1 count=$2 start i pids=() done=() left
    start=$(date +%s.%N)
    for i in $(seq 1 "$count"); do
        rm -rf "$W/out-$step-$i" "$W/state-$step-$i"
        : > "$W/leech-$step-$i.log"
        "$BIN" download "$W/t.torrent" -o "$W/out-$step-$i" --seed --port "$(free_port)" \
            --state-dir "$W/state-$step-$i" "${NET[@]}" > "$W/leech-$step-$i.log" 2>&1 &
        pids+=($!)
    done
    left=$count
    while [ "$left" -gt 0 ]; do
        for i in $(seq 1 "$count"); do
            [ -n "${done[$i]:-}" ] && continue
            if grep -q ": complete" "$W/leech-$step-$i.log"; then
                done[$i]=$(echo "$(date +%s.%N) - $start" | bc)
                echo "${done[$i]}"
                left=$((left - 1))
            elif ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
                echo "leecher $i of $step died: $(tail -3 "$W/leech-$step-$i.log")" >&2
                exit 1
            fi
        done
        if [ "$(echo "$(date +%s.%N) - $start > 600" | bc)" = 1 ]; then
            echo "$step: not all complete after 10 minutes" >&2
            exit 1
        fi
        sleep 0.05
    done
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    for i in $(seq 1 "$count"); do
        cmp -s "$W/data/payload.bin" "$W/out-$step-$i/payload.bin" \
            || { echo "leecher $i of $step: the file differs from the original" >&2; exit 1; }
        rm -rf "$W/out-$step-$i"
    done
}

echo "swarm: ${SIZE_MIB} MiB, 256 KiB pieces, one Rivulet seeder limited to $LIMIT KiB/s upload, Rivulet leechers"
alone=()
for run in $(seq 1 "$RUNS"); do
    start_seeder "alone-$run"
    t=$(leech "alone-$run" 1)
    up=$(stop_seeder "alone-$run")
    echo "  one leecher alone, run $run: ${t} s (the seeder uploaded $up bytes)"
    alone+=("$t")
done
median_alone=$(printf '%s\n' "${alone[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')

start_seeder swarm
times=$(leech swarm "$LEECHERS")
up=$(stop_seeder swarm)
last=$(echo "$times" | tail -1)
first=$(echo "$times" | head -1)
copies=$(echo "scale=2; $up / ($SIZE_MIB * 1048576)" | bc)
echo "  $LEECHERS leechers together: first complete after $first s, last after $last s"
echo "  the seeder uploaded $up bytes ($copies copies of the torrent)"
ratio=$(echo "scale=2; $last / $median_alone" | bc)
verdict=FAIL
[ "$(echo "$ratio <= 2" | bc)" = 1 ] && verdict=PASS
echo "swarm of $LEECHERS: last complete $last s, ${ratio}x one leecher alone ($median_alone s, median), target <= 2x: $verdict; seeder uploaded $copies copies"
