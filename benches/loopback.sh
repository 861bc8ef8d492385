#!/usr/bin/env bash
# Loopback download benchmark: Rivulet against aria2.
#
#   bash benches/loopback.sh
#
# One random file (1 GiB by default) is seeded by aria2 on 127.0.0.1 through a
# local opentracker. Rivulet (release build) and aria2 then download it in turn,
# BENCH_RUNS times each, every run into a fresh folder and wrapped in
# `/usr/bin/time -v`. Every download is compared with the original (cmp); a wrong
# one stops the benchmark with an error. Prints the per-run numbers, the medians of
# wall seconds, CPU seconds (user+sys) and peak RSS (MiB) for each client, and the
# Rivulet/aria2 ratios. The data is deleted at the end.
#
# Environment:
#   BENCH_SIZE_MIB     payload size in MiB (default 1024)
#   BENCH_RUNS         runs per client (default 3)
#   BENCH_PIECE_LOG2   piece length as a power of two (default 20 from 512 MiB up, else 18)
#   RIVULET_BIN        use this rivulet binary instead of `cargo build --release`
#   BENCH_KEEP=1       keep the work directory
#
# Note: aria2 has a start-up cost of about 4 s whatever the size, which the wall
# times include; compare on a large payload.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
if [ -z "${BENCH_PIECE_LOG2:-}" ]; then
    if [ "$SIZE_MIB" -ge 512 ]; then BENCH_PIECE_LOG2=20; else BENCH_PIECE_LOG2=18; fi
fi
# seconds one leecher run may take
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-$((120 + SIZE_MIB / 2))}

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'loopback bench: FAILED: %s\n' "$*" >&2; exit 1; }

# processes, package installs: shared with the interop suite
source "$ROOT/tests/interop/lib.sh"
WORK=""
cleanup() {
    stop_all_pids
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- tools
need_install=()
command -v python3 >/dev/null || need_install+=(python3)
command -v opentracker >/dev/null || need_install+=(opentracker)
command -v mktorrent >/dev/null || need_install+=(mktorrent)
command -v aria2c >/dev/null || need_install+=(aria2)
[ -x /usr/bin/time ] || need_install+=(time)
{ command -v pgrep >/dev/null && command -v pkill >/dev/null; } || need_install+=(procps)
install_missing ${need_install[@]+"${need_install[@]}"}

if [ -n "${RIVULET_BIN:-}" ]; then
    RIV=$RIVULET_BIN
else
    log "building rivulet (cargo build --release --bin rivulet)"
    (cd "$ROOT" && timeout 3600 cargo build --release --bin rivulet) >&2 || die "cargo build failed"
    RIV="${CARGO_TARGET_DIR:-$ROOT/target}/release/rivulet"
fi
case "$RIV" in /*) ;; *) RIV="$PWD/$RIV" ;; esac
[ -x "$RIV" ] || die "no rivulet binary at $RIV"
export RUST_LOG=${RUST_LOG:-rivulet=info}
export NO_COLOR=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rivulet-bench.XXXXXX") || die "mktemp failed"
chmod 755 "$WORK"     # opentracker runs as nobody and reads the whitelist in here
# bencode, tracker probes and `/usr/bin/time` parsing are shared with the interop suite
BT="$ROOT/tests/interop/bt.py"
[ -f "$BT" ] || die "missing $BT"
py() { python3 "$BT" "$@"; }
REPORT="$WORK/report.py"
cat >"$REPORT" <<'PY'
import sys, statistics
a = sys.argv[1:]
# report SIZE_MIB RESULTS_FILE ; lines: client run wall cpu rss
size = float(a[0]); rows = {}
for line in open(a[1]):
    c, r, w, u, m = line.split()
    rows.setdefault(c, []).append((float(w), float(u), float(m)))
med = {}
print()
print('%-8s %4s %10s %10s %12s %12s' % ('client', 'run', 'wall s', 'cpu s', 'peak RSS MiB', 'MiB/s (wall)'))
for c in ('rivulet', 'aria2'):
    for i, (w, u, m) in enumerate(rows.get(c, []), 1):
        print('%-8s %4d %10.2f %10.2f %12.1f %12.1f' % (c, i, w, u, m, size / w if w else 0))
print()
print('medians over %d run(s), %.0f MiB payload:' % (max(len(v) for v in rows.values()), size))
print('%-8s %10s %10s %12s %12s' % ('client', 'wall s', 'cpu s', 'peak RSS MiB', 'MiB/s (wall)'))
for c in ('rivulet', 'aria2'):
    v = rows[c]
    med[c] = tuple(statistics.median(x[k] for x in v) for k in range(3))
    w, u, m = med[c]
    print('%-8s %10.2f %10.2f %12.1f %12.1f' % (c, w, u, m, size / w if w else 0))
r, x = med['rivulet'], med['aria2']
ratio = lambda p, q: ('%.2f' % (p / q)) if q else 'n/a'
print('%-8s %10s %10s %12s' % ('riv/aria', ratio(r[0], x[0]), ratio(r[1], x[1]), ratio(r[2], x[2])))
print('(ratios below 1 mean Rivulet used less time / CPU / memory than aria2)')
PY

# ---------------------------------------------------------------- tracker, data, seeder
read -r TRACKER_PORT SEED_PORT < <(py freeports 2)
WHITELIST="$WORK/whitelist"
: >"$WHITELIST"
chmod 644 "$WHITELIST"
bg 86400 "$WORK/opentracker.log" opentracker -i 127.0.0.1 -p "$TRACKER_PORT" -P "$TRACKER_PORT" \
    -d / -w "$WHITELIST" -A 127.0.0.1
OT_PID=$BG_PID

mkdir -p "$WORK/seed"
SRC="$WORK/seed/payload.bin"
log "writing ${SIZE_MIB} MiB of random data"
# + 4321 bytes so the last piece is a short one
{ head -c "$((SIZE_MIB * 1048576))" /dev/urandom; head -c 4321 /dev/urandom; } >"$SRC" \
    || die "cannot write the payload"
T="$WORK/payload.torrent"
timeout 3600 mktorrent -d -l "$BENCH_PIECE_LOG2" -a "http://127.0.0.1:$TRACKER_PORT/announce" \
    -o "$T" "$SRC" >"$WORK/mktorrent.log" 2>&1 || die "mktorrent failed: $(tail -n 3 "$WORK/mktorrent.log")"
HASH=$(py infohash "$T") || die "cannot read the info hash"
echo "$HASH" >>"$WHITELIST"
OT_CHILD=$(pgrep -P "$OT_PID" | head -n 1)
[ -n "$OT_CHILD" ] || die "opentracker is not running: $(tail -n 5 "$WORK/opentracker.log")"
kill -HUP "$OT_CHILD"
py wlwait "$TRACKER_PORT" 15 "$HASH" || die "opentracker does not accept the torrent"

ARIA_COMMON=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false
    --enable-peer-exchange=false --disable-ipv6=true --interface=127.0.0.1 --no-conf=true
    --follow-torrent=mem --bt-save-metadata=false --auto-save-interval=0
    --file-allocation=falloc --allow-overwrite=true --summary-interval=0 --console-log-level=notice)

bg $((RUNS * 2 * RUN_TIMEOUT + 600)) "$WORK/aria2-seed.log" aria2c "${ARIA_COMMON[@]}" \
    --seed-ratio=0.0 --bt-seed-unverified=true --check-integrity=false \
    --listen-port="$SEED_PORT" --bt-tracker-interval=5 --dir="$WORK/seed" "$T"
SEED_PID=$BG_PID
py waitseed "$TRACKER_PORT" "$HASH" 60 || die "the aria2 seeder never showed up: $(tail -n 5 "$WORK/aria2-seed.log")"
log "aria2 seeds $HASH (${SIZE_MIB} MiB, 2^$BENCH_PIECE_LOG2-byte pieces) on 127.0.0.1:$SEED_PORT"

# ---------------------------------------------------------------- runs
RESULTS="$WORK/results"
: >"$RESULTS"

run_one() {
    local client=$1 run=$2 port out tf logf rc
    read -r port < <(py freeports 1)
    out="$WORK/out-$client-$run"
    tf="$WORK/time-$client-$run.txt"
    logf="$WORK/$client-$run.log"
    rm -rf "$out"
    mkdir -p "$out"
    kill -0 "$SEED_PID" 2>/dev/null || die "the aria2 seeder died: $(tail -n 5 "$WORK/aria2-seed.log")"
    case "$client" in
        rivulet)
            mkdir -p "$WORK/state-$run"
            bg "$RUN_TIMEOUT" "$logf" /usr/bin/time -v -o "$tf" "$RIV" download "$T" -o "$out" \
                --port "$port" --bind 127.0.0.1 --state-dir "$WORK/state-$run" ;;
        aria2)
            bg "$RUN_TIMEOUT" "$logf" /usr/bin/time -v -o "$tf" aria2c "${ARIA_COMMON[@]}" \
                --seed-time=0 --listen-port="$port" --dir="$out" "$T" ;;
    esac
    rc=0
    wait "$BG_PID" || rc=$?
    if [ $rc -ne 0 ]; then
        tr '\r' '\n' <"$logf" | tail -n 30 >&2
        die "$client run $run exited with status $rc$([ $rc = 124 ] && echo " (timed out after $RUN_TIMEOUT s)")"
    fi
    cmp "$SRC" "$out/payload.bin" >&2 || die "$client run $run: the downloaded file differs from the original"
    read -r wall cpu rss < <(py timefile "$tf") || die "cannot read $tf"
    echo "$client $run $wall $cpu $rss" >>"$RESULTS"
    log "$client run $run: wall ${wall} s, cpu ${cpu} s, peak RSS ${rss} MiB (verified)"
    rm -rf "$out" "$WORK/state-$run"
}

for run in $(seq "$RUNS"); do
    run_one rivulet "$run"
    run_one aria2 "$run"
done

python3 "$REPORT" "$SIZE_MIB" "$RESULTS"
