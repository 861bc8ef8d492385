#!/usr/bin/env bash
# Loopback download benchmark: Rivulet as a leecher against libtorrent and aria2 as leechers,
# in one run, on the same data from the same seeder.
#
#   bash benches/loopback.sh
#
# One random file (1 GiB by default) and one torrent, announced to a local opentracker on
# 127.0.0.1. One seeder serves every run (see "Seeder" below). For each of BENCH_RUNS rounds,
# each leecher downloads the file once, into a fresh folder, the order rotated from round to
# round (rivulet libtorrent aria2, then libtorrent aria2 rivulet, ...):
#   rivulet     `rivulet download --transport tcp` (release build; TCP only, as the other two
#               leechers and the seeder are)
#   libtorrent  libtorrent 2.0 through tests/interop/ltdrive.py (default settings as
#               qBittorrent has them, TCP only), run by /usr/bin/python3
#   aria2       `aria2c` 1.36 with --seed-time=0
# Every download is compared with the original (cmp); a wrong or failed one stops the
# benchmark with exit status 1. Between runs the dirty pages are written back (sync) and the
# tracker's swarm is back to the seeder alone.
#
# Two times per run, both printed, nothing subtracted:
#   whole s     the leecher's process from start to exit, measured by `/usr/bin/time -v`, with
#               its CPU (user+sys, all threads) and peak RSS. INCLUDES start-up and shutdown:
#               loading the program (for libtorrent: the Python interpreter and the module),
#               tracker announces, connecting, the download, hashing, and the exit (the
#               `stopped` announce, closing files).
#   transfer s  what the client reports itself, from the torrent being added to all pieces
#               verified. EXCLUDES process start-up and shutdown; INCLUDES the first tracker
#               announce, connecting to the seeder and any wait of the client's own timers:
#                 rivulet     its log: "listening for peers" (the session is up; the torrent
#                             is added next) to "download complete" (last piece written and
#                             verified)
#                 libtorrent  the driver's "finished in S s": add_torrent to the torrent
#                             finished (all pieces verified)
#                 aria2       its log file (--log, notice level): "Downloading 1 item(s)" to
#                             "Seeding is over." (all pieces verified; with --seed-time=0 it
#                             stops seeding at once)
# aria2's "start-up of about 4 s" is mostly its one-second timers: about 2 s between adding
# the torrent and its first request (the announce and the connect each wait for a tick), which
# count in its transfer time, and about 2 s after the last piece (the `completed` announce,
# then the exit), which count in its whole time only. libtorrent's CPU and RSS are those of the
# Python process (the driver polls every 200 ms); libtorrent 2.0 writes through memory-mapped
# files, so its RSS also counts the pages of the file it has written.
#
# Seeder: libtorrent 2.0 with lt.high_performance_seed() (ltdrive.py seed), one process for all
# runs, started first and listed by the tracker as a seed before the first leecher. It is
# preferred to an aria2 seeder as the faster and steadier of the two: it reads and sends from
# its own disk and network threads with deep queues, whereas aria2 runs its peers, disk reads
# and one-second timers in one event-loop thread; in trials at 64 MiB every one of the three
# leechers finished sooner from the libtorrent seeder. libtorrent serving libtorrent is also
# the reference of benches/seed_vs_libtorrent.sh. BENCH_SEEDER=aria2 uses an aria2 seeder
# instead (the old setup), to check that choice on a quiet machine.
#
# Prints per-run lines, the medians per client and the ratios rivulet/libtorrent and
# rivulet/aria2 of each column. The data is deleted at the end.
#
# Environment:
#   BENCH_SIZE_MIB     payload size in MiB (default 1024)
#   BENCH_RUNS         rounds, i.e. downloads per client (default 3)
#   BENCH_PIECE_LOG2   piece length as a power of two (default 20 from 512 MiB up, else 18)
#   BENCH_SEEDER       libtorrent (default) or aria2
#   BENCH_RUN_TIMEOUT  seconds one leecher may take (default 120 + SIZE_MIB/2)
#   BENCH_LEECH_DIR    where the leechers write (default: the work directory; e.g. /dev/shm
#                      takes the disk's write-back out of the figures)
#   RIVULET_BIN        use this rivulet binary instead of `cargo build --release`
#   RUST_LOG           Rivulet's log filter (default rivulet=info; its transfer time needs the
#                      info lines)
#   BENCH_KEEP=1       keep the work directory (logs, /usr/bin/time reports)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
SEEDER=${BENCH_SEEDER:-libtorrent}
if [ -z "${BENCH_PIECE_LOG2:-}" ]; then
    if [ "$SIZE_MIB" -ge 512 ]; then BENCH_PIECE_LOG2=20; else BENCH_PIECE_LOG2=18; fi
fi
# seconds one leecher run may take
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-$((120 + SIZE_MIB / 2))}
CLIENTS=(rivulet libtorrent aria2)

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'loopback bench: FAILED: %s\n' "$*" >&2; exit 1; }

case "$SEEDER" in libtorrent|aria2) ;; *) die "BENCH_SEEDER must be libtorrent or aria2" ;; esac

# set-up, the tracker and the payload: shared by both benchmarks (and, through
# tests/interop/lib.sh and bt.py, with the interop suite)
source "$ROOT/benches/payload.sh"
bench_setup rivulet-bench aria2c aria2 /usr/bin/time time

VERSIONS="rivulet $("$RIV" --version 2>/dev/null | awk '{print $2}'), libtorrent $(
    /usr/bin/python3 -c 'import libtorrent; print(libtorrent.__version__)' 2>/dev/null), aria2 $(
    aria2c --version 2>/dev/null | awk 'NR == 1 {print $3}')"

# transfer CLIENT LOG : seconds from the torrent added to all pieces verified, as the client
# logged it (see the header)
TRANSFER="$WORK/transfer.py"
cat >"$TRANSFER" <<'PY'
import re, sys
from datetime import datetime
client, path = sys.argv[1], sys.argv[2]
text = re.sub(r'\x1b\[[0-9;]*m', '', open(path, errors='replace').read())

def span(fmt, start, end, names):
    t0 = t1 = None
    for line in text.splitlines():
        if t0 is None and start.search(line):
            t0 = datetime.strptime(start.search(line).group(1), fmt)
        elif t0 is not None and end.search(line):
            t1 = datetime.strptime(end.search(line).group(1), fmt)
            break
    if t0 is None or t1 is None:
        sys.exit('%s: no "%s" line in %s' % (client, names[0] if t0 is None else names[1], path))
    return (t1 - t0).total_seconds()

if client == 'rivulet':
    # 2026-11-25T23:15:10.678124Z  INFO rivulet::engine::session::network: listening for peers …
    s = span('%Y-%m-%dT%H:%M:%S.%f',
             re.compile(r'^(\S+?)Z?\s+INFO\s+rivulet::engine::session\S*: listening for peers'),
             re.compile(r'^(\S+?)Z?\s+INFO\s+rivulet::engine::torrent\S*: download complete'),
             ('listening for peers', 'download complete'))
elif client == 'aria2':
    # 2026-11-25 23:15:12.941465 [NOTICE] [Context.cc:310] Downloading 1 item(s)
    s = span('%Y-%m-%d %H:%M:%S.%f',
             re.compile(r'^(\S+ \S+) \[NOTICE\] \[[^]]*\] Downloading 1 item'),
             re.compile(r'^(\S+ \S+) \[NOTICE\] \[[^]]*\] Seeding is over\.'),
             ('Downloading 1 item(s)', 'Seeding is over.'))
elif client == 'libtorrent':
    found = re.findall(r'finished in ([0-9.]+) s', text)
    if not found:
        sys.exit('libtorrent: no "finished in" in %s' % path)
    s = float(found[-1])
else:
    sys.exit('unknown client ' + client)
print('%.2f' % s)
PY

REPORT="$WORK/report.py"
cat >"$REPORT" <<'PY'
import sys, statistics
# report SIZE_MIB RUNS SEEDER VERSIONS RESULTS ; lines: seq round client whole transfer cpu rss
size, runs, seeder, versions = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = []
for line in open(sys.argv[5]):
    q, r, c, w, t, u, m = line.split()
    rows.append((int(q), int(r), c, float(w), float(t), float(u), float(m)))
rows.sort()
clients = ('rivulet', 'libtorrent', 'aria2')
mibs = lambda s: size / s if s else 0.0
print()
print('Loopback download, %.0f MiB, %s seeder; %s; %d round(s), order rotated.'
      % (size, seeder, versions, runs))
print('  whole s    = leecher process start to exit (/usr/bin/time -v): INCLUDES start-up and')
print('               shutdown; cpu s (user+sys) and peak RSS are of that whole process.')
print('  transfer s = torrent added to all pieces verified, as each client reports it:')
print('               EXCLUDES start-up and shutdown (rivulet: its log; libtorrent: driver\'s')
print('               "finished in"; aria2: its log). Nothing is subtracted from either.')
print()
hdr = '%-10s %5s %9s %11s %12s %14s %8s %9s'
fmt = '%-10s %5d %9.2f %11.2f %12.1f %14.1f %8.2f %9.1f'
cols = ('whole s', 'transfer s', 'MiB/s whole', 'MiB/s transfer', 'cpu s', 'RSS MiB')
print(hdr % (('client', 'round') + cols))
for q, r, c, w, t, u, m in rows:
    print(fmt % (c, r, w, t, mibs(w), mibs(t), u, m))
med = {}
for c in clients:
    v = [x for x in rows if x[2] == c]
    if v:
        med[c] = tuple(statistics.median(x[k] for x in v) for k in (3, 4, 5, 6))
print()
print('medians:')
hdr = '%-16s %9s %11s %12s %14s %8s %9s'
print(hdr % (('client',) + cols))
for c in clients:
    if c in med:
        w, t, u, m = med[c]
        print('%-16s %9.2f %11.2f %12.1f %14.1f %8.2f %9.1f' % (c, w, t, mibs(w), mibs(t), u, m))
ratio = lambda p, q: ('%.2f' % (p / q)) if q else 'n/a'
r = med.get('rivulet')
for c, name in (('libtorrent', 'riv/libtorrent'), ('aria2', 'riv/aria2')):
    x = med.get(c)
    if r and x:
        print(hdr % (name, ratio(r[0], x[0]), ratio(r[1], x[1]), '', '',
                     ratio(r[2], x[2]), ratio(r[3], x[3])))
print('(ratios of medians; below 1 means Rivulet took less time / CPU / memory)')
lt, a2 = med.get('libtorrent'), med.get('aria2')
if r and lt and a2:
    verdict = lambda met: 'PASS' if met else 'FAIL'
    print('goal 1: transfer %.2fx libtorrent\'s, target <= 0.8: %s; cpu %.2fx aria2\'s, target <= 0.8: %s; '
          'peak RSS %.1f MiB, target <= 20: %s'
          % (r[1] / lt[1], verdict(r[1] <= 0.8 * lt[1]), r[2] / a2[2], verdict(r[2] <= 0.8 * a2[2]),
             r[3], verdict(r[3] <= 20)))
PY

# ---------------------------------------------------------------- tracker, data
read -r TRACKER_PORT SEED_PORT < <(py freeports 2)
start_tracker_and_payload "$TRACKER_PORT"
# the first run starts with no dirty pages to write back
timeout 600 sync

# ---------------------------------------------------------------- seeder
ARIA_COMMON=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false
    --enable-peer-exchange=false --disable-ipv6=true --interface=127.0.0.1 --no-conf=true
    --follow-torrent=mem --bt-save-metadata=false --auto-save-interval=0
    --file-allocation=falloc --allow-overwrite=true --summary-interval=0 --console-log-level=notice)

SEED_LOG="$WORK/seed-$SEEDER.log"
SEED_LIFE=$((RUNS * ${#CLIENTS[@]} * (RUN_TIMEOUT + 60) + 600 + SIZE_MIB / 4))
case "$SEEDER" in
    libtorrent)
        bg "$SEED_LIFE" "$SEED_LOG" /usr/bin/python3 -u "$LT" seed "$T" "$WORK/seed" "$SEED_PORT" ;;
    aria2)
        bg "$SEED_LIFE" "$SEED_LOG" aria2c "${ARIA_COMMON[@]}" \
            --seed-ratio=0.0 --bt-seed-unverified=true --check-integrity=false \
            --listen-port="$SEED_PORT" --bt-tracker-interval=5 --dir="$WORK/seed" "$T" ;;
esac
SEED_PID=$BG_PID
py waitseed "$TRACKER_PORT" "$HASH" $((120 + SIZE_MIB / 8)) \
    && py waitpeer "$TRACKER_PORT" "$HASH" "$SEED_PORT" 60 \
    || { tail -n 20 "$SEED_LOG" >&2; die "the $SEEDER seeder never showed up at the tracker"; }
log "$SEEDER seeds $HASH (${SIZE_MIB} MiB, 2^$BENCH_PIECE_LOG2-byte pieces) on 127.0.0.1:$SEED_PORT"

# ---------------------------------------------------------------- runs
RESULTS="$WORK/results"
: >"$RESULTS"
SEQ=0

run_one() {
    local client=$1 run=$2 port out tf logf alog rc why whole cpu rss transfer
    read -r port < <(py freeports 1)
    out="$LEECH_DIR/out-$client-$run"
    tf="$WORK/time-$client-$run.txt"
    logf="$WORK/$client-$run.log"
    alog="$WORK/aria2-$run.alog"
    rm -rf "$out"
    mkdir -p "$out"
    kill -0 "$SEED_PID" 2>/dev/null || die "the $SEEDER seeder died: $(tail -n 5 "$SEED_LOG")"
    case "$client" in
        rivulet)
            mkdir -p "$WORK/state-$run"
            bg "$RUN_TIMEOUT" "$logf" /usr/bin/time -v -o "$tf" "$RIV" download "$T" -o "$out" \
                --port "$port" --bind 127.0.0.1 --state-dir "$WORK/state-$run" --transport tcp ;;
        libtorrent)
            bg "$RUN_TIMEOUT" "$logf" /usr/bin/time -v -o "$tf" /usr/bin/python3 -u "$LT" leech \
                "$T" "$out" "$port" $((RUN_TIMEOUT - 5)) 60 ;;
        aria2)
            rm -f "$alog"
            bg "$RUN_TIMEOUT" "$logf" /usr/bin/time -v -o "$tf" aria2c "${ARIA_COMMON[@]}" \
                --log="$alog" --log-level=notice \
                --seed-time=0 --listen-port="$port" --dir="$out" "$T" ;;
    esac
    rc=0
    wait "$BG_PID" || rc=$?
    if [ $rc -ne 0 ]; then
        tr '\r' '\n' <"$logf" | tail -n 30 >&2
        why=""
        [ $rc = 124 ] && why=" (timed out after $RUN_TIMEOUT s)"
        [ "$client" = libtorrent ] && [ $rc = 3 ] && why=" (the driver timed out)"
        [ "$client" = libtorrent ] && [ $rc = 5 ] && why=" (stalled)"
        die "$client run $run exited with status $rc$why"
    fi
    cmp "$SRC" "$out/payload.bin" >&2 || die "$client run $run: the downloaded file differs from the original"
    read -r whole cpu rss < <(py timefile "$tf") || die "cannot read $tf"
    case "$client" in
        aria2) transfer=$(python3 "$TRANSFER" aria2 "$alog") ;;
        *) transfer=$(python3 "$TRANSFER" "$client" "$logf") ;;
    esac
    [ -n "$transfer" ] || die "$client run $run: no transfer time in its log"
    SEQ=$((SEQ + 1))
    echo "$SEQ $run $client $whole $transfer $cpu $rss" >>"$RESULTS"
    log "$client run $run: whole ${whole} s (incl. start-up), transfer ${transfer} s (excl.), cpu ${cpu} s, peak RSS ${rss} MiB (verified)"
    # the next run starts from a swarm of the seeder alone: this leecher has said `stopped`
    end_run "$out" "$run" 'complete<=1' 'incomplete=0'
}

for run in $(seq "$RUNS"); do
    n=${#CLIENTS[@]}
    for k in $(seq 0 $((n - 1))); do
        run_one "${CLIENTS[$(((run - 1 + k) % n))]}" "$run"
    done
done

python3 "$REPORT" "$SIZE_MIB" "$RUNS" "$SEEDER" "$VERSIONS" "$RESULTS"
