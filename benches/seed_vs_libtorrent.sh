#!/usr/bin/env bash
# Seeding benchmark: a Rivulet seeder's speed to a libtorrent leecher, compared with
# libtorrent seeding to libtorrent, on the same data, side by side in one run.
#
#   bash benches/seed_vs_libtorrent.sh
#
# One random file (1 GiB by default) and one torrent (1 MiB pieces), announced to a
# local opentracker on 127.0.0.1. For each of BENCH_RUNS rounds, two runs, their order
# alternating from round to round:
#   rivulet     `rivulet seed` (release build) serves a fresh libtorrent leecher
#   libtorrent  a libtorrent seeder (lt.high_performance_seed()) serves a fresh libtorrent
#               leecher
# Each run starts a fresh seeder, waits until the tracker lists it as a seed (its data
# checked), then starts the leecher (tests/interop/ltdrive.py, libtorrent's default
# settings as qBittorrent has them, TCP only) and takes the leecher's time from adding
# the torrent to all pieces verified. The seeder's CPU time (user+sys, all threads) is
# counted from when it is listed to when the leecher has finished, so its start-up
# check of the data is left out; its peak RSS (VmHWM) covers its whole life. Every
# download is compared with the original (cmp); a wrong or failed one stops the
# benchmark with exit status 1. Prints per-run figures, medians, the ratios
# rivulet/libtorrent, and finally
#   ratio rivulet/libtorrent of median leecher time X.XX target <= 1.25: PASS|FAIL
# The data is deleted at the end.
#
# Environment:
#   BENCH_SIZE_MIB     payload size in MiB (default 1024)
#   BENCH_RUNS         rounds (default 3)
#   BENCH_PIECE_LOG2   piece length as a power of two (default 20: 1 MiB)
#   BENCH_TARGET       the largest acceptable ratio (default 1.25)
#   BENCH_STRICT=1     exit with status 4 when the ratio misses the target
#   BENCH_RUN_TIMEOUT  seconds one leecher may take (default 120 + SIZE_MIB/2)
#   BENCH_LEECH_DIR    where the leechers write (default: the work directory; e.g.
#                      /dev/shm takes the disk's write-back out of the figures)
#   RIVULET_BIN        use this rivulet binary instead of `cargo build --release`
#   BENCH_KEEP=1       keep the work directory
#
# Note: libtorrent 2.0 does its disk I/O through memory-mapped files, so its RSS also
# counts the pages of the data it has touched; Rivulet uses positioned reads.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
BENCH_PIECE_LOG2=${BENCH_PIECE_LOG2:-20}
TARGET=${BENCH_TARGET:-1.25}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-$((120 + SIZE_MIB / 2))}
# a seeder lives through its check of the data, the leecher's run and a margin
SEED_TIMEOUT=$((RUN_TIMEOUT + 300 + SIZE_MIB / 4))

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'seed bench: FAILED: %s\n' "$*" >&2; exit 1; }

# set-up, the tracker and the payload: shared by both benchmarks (and, through
# tests/interop/lib.sh and bt.py, with the interop suite)
source "$ROOT/benches/payload.sh"
bench_setup rivulet-seedbench

REPORT="$WORK/report.py"
cat >"$REPORT" <<'PY'
import sys, statistics
# report SIZE_MIB TARGET RESULTS_FILE ; lines: seeder run leech_wall seed_cpu seed_rss
size, target = float(sys.argv[1]), float(sys.argv[2])
rows = {}
for line in open(sys.argv[3]):
    c, r, w, u, m = line.split()
    rows.setdefault(c, []).append((int(r), float(w), float(u), float(m)))
order = ('rivulet', 'libtorrent')
print()
print('%-11s %4s %14s %12s %14s %16s' % ('seeder', 'run', 'leecher s', 'MiB/s', 'seeder cpu s',
                                          'seeder RSS MiB'))
for c in order:
    for r, w, u, m in rows.get(c, []):
        print('%-11s %4d %14.2f %12.1f %14.2f %16.1f' % (c, r, w, size / w if w else 0, u, m))
med = {}
print()
print('medians over %d round(s), %.0f MiB payload, libtorrent leecher:'
      % (max(len(v) for v in rows.values()), size))
print('%-11s %14s %12s %14s %16s' % ('seeder', 'leecher s', 'MiB/s', 'seeder cpu s', 'seeder RSS MiB'))
for c in order:
    v = rows[c]
    med[c] = tuple(statistics.median(x[k] for x in v) for k in (1, 2, 3))
    w, u, m = med[c]
    print('%-11s %14.2f %12.1f %14.2f %16.1f' % (c, w, size / w if w else 0, u, m))
r, x = med['rivulet'], med['libtorrent']
ratio = lambda p, q: (p / q) if q else float('inf')
print('%-11s %14.2f %12s %14.2f %16.2f' % ('riv/lt', ratio(r[0], x[0]), '', ratio(r[1], x[1]),
                                          ratio(r[2], x[2])))
print('(ratios below 1 mean the Rivulet seeder was faster / used less CPU / memory)')
t = ratio(r[0], x[0])
ok = t <= target
print('ratio rivulet/libtorrent of median leecher time %.2f target <= %.2f: %s'
      % (t, target, 'PASS' if ok else 'FAIL'))
sys.exit(0 if ok else 4)
PY

# ---------------------------------------------------------------- tracker, data
read -r TRACKER_PORT < <(py freeports 1)
start_tracker_and_payload "$TRACKER_PORT"
# every run starts with no dirty pages to write back (the payload's, the last download's)
timeout 600 sync
log "torrent $HASH: ${SIZE_MIB} MiB, 2^$BENCH_PIECE_LOG2-byte pieces, tracker 127.0.0.1:$TRACKER_PORT"

# ---------------------------------------------------------------- runs
RESULTS="$WORK/results"
: >"$RESULTS"

# child_of TIMEOUT_PID : the PID of the process that timeout runs
child_of() {
    local i c
    for i in $(seq 50); do
        c=$(pgrep -P "$1" | head -n 1)
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.1
    done
    return 1
}

run_one() {
    local seeder=$1 run=$2 sport lport out slog llog seed_pid seed_child rc t0 wall cpu0 cpu1 rss
    read -r sport lport < <(py freeports 2)
    out="$LEECH_DIR/out-$seeder-$run"
    slog="$WORK/seed-$seeder-$run.log"
    llog="$WORK/leech-$seeder-$run.log"
    rm -rf "$out"
    mkdir -p "$out"
    case "$seeder" in
        rivulet)
            mkdir -p "$WORK/state-$run"
            bg "$SEED_TIMEOUT" "$slog" "$RIV" seed "$T" "$WORK/seed" --port "$sport" \
                --bind 127.0.0.1 --state-dir "$WORK/state-$run" ;;
        libtorrent)
            bg "$SEED_TIMEOUT" "$slog" /usr/bin/python3 -u "$LT" seed "$T" "$WORK/seed" "$sport" ;;
    esac
    seed_pid=$BG_PID
    seed_child=$(child_of "$seed_pid") || die "$seeder seeder did not start: $(tail -n 5 "$slog")"
    # listed as a seed (data checked), and this seeder, not a stale peer of an earlier run
    t0=$(date +%s)
    py waitseed "$TRACKER_PORT" "$HASH" $((120 + SIZE_MIB / 8)) \
        && py waitpeer "$TRACKER_PORT" "$HASH" "$sport" 60 \
        || { tail -n 20 "$slog" >&2; die "$seeder seeder never listed by the tracker"; }
    log "$seeder seeder ready after $(( $(date +%s) - t0 )) s"
    read -r cpu0 _ < <(py proccpu "$seed_child") || die "$seeder seeder died: $(tail -n 5 "$slog")"

    bg "$RUN_TIMEOUT" "$llog" /usr/bin/python3 -u "$LT" leech "$T" "$out" "$lport" \
        $((RUN_TIMEOUT - 5)) 60
    rc=0
    wait "$BG_PID" || rc=$?
    read -r cpu1 rss < <(py proccpu "$seed_child") || { cpu1=nan; rss=nan; }
    stop_pid "$seed_pid"
    if [ $rc -ne 0 ]; then
        tail -n 30 "$llog" >&2
        echo "----- seeder log -----" >&2
        tail -n 20 "$slog" >&2
        die "$seeder run $run: the libtorrent leecher exited with status $rc$( \
            [ $rc = 3 ] && echo ' (timed out)'; [ $rc = 5 ] && echo ' (stalled)')"
    fi
    [ "$cpu1" != nan ] || die "$seeder run $run: the seeder died during the run: $(tail -n 5 "$slog")"
    wall=$(sed -n 's/.*finished in \([0-9.]*\) s.*/\1/p' "$llog" | tail -n 1)
    [ -n "$wall" ] || die "$seeder run $run: no 'finished in' in $llog"
    cmp "$SRC" "$out/payload.bin" >&2 || die "$seeder run $run: the downloaded file differs from the original"
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
    echo "$seeder $run $wall $cpu $rss" >>"$RESULTS"
    log "$seeder run $run: leecher ${wall} s, seeder cpu ${cpu} s, seeder peak RSS ${rss} MiB (verified)"
    # the next run starts from an empty swarm: seeder and leecher have said `stopped`
    end_run "$out" "$run" 'complete=0'
}

for run in $(seq "$RUNS"); do
    if [ $((run % 2)) = 1 ]; then
        run_one rivulet "$run"
        run_one libtorrent "$run"
    else
        run_one libtorrent "$run"
        run_one rivulet "$run"
    fi
done

rc=0
python3 "$REPORT" "$SIZE_MIB" "$TARGET" "$RESULTS" || rc=$?
[ $rc -eq 4 ] && [ "${BENCH_STRICT:-0}" != 1 ] && rc=0
exit $rc
