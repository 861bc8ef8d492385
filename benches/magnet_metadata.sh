#!/usr/bin/env bash
# Magnet links: the time from adding a magnet link to holding the torrent's metadata (BEP 9's
# ut_metadata), Rivulet against libtorrent, from the same libtorrent seeder on loopback.
#
#   bash benches/magnet_metadata.sh
#
# One libtorrent 2.0 seeder (tests/interop/ltdrive.py seed) serves a many-file torrent made
# by libtorrent with 16 KiB pieces, whose info dictionary is about 31 KiB (two metadata
# pieces). The link names the seeder with x.pe and no tracker, so both clients dial the same
# address at once and the time is the fetch alone: connect, handshakes, the extension
# handshake, the requests and the SHA-1 of the whole. For each of BENCH_RUNS rounds (7 by
# default), each client adds the link once from a fresh state, the order alternating:
#   rivulet     `rivulet download LINK` (release build): its "metadata in S s", from the
#               magnet actor's start (the session takes the AddMagnet) to the metadata
#               checked against the info hash
#   libtorrent  ltdrive.py leech LINK: "metadata in S s", from add_torrent to
#               status().has_metadata (the driver waits on alerts, 20 ms at most)
# Each download then runs to its end and is compared with the original.
# Prints per-run lines, the medians and the ratio rivulet/libtorrent (the issue's target is
# Rivulet under 1 s). libtorrent dials new peers from its session tick (`tick_interval`, 500 ms
# by default), which its time shows; LT_SETTINGS='{"tick_interval": 100}' shortens it.
#
# Environment:
#   BENCH_RUNS    rounds (default 7)
#   RIVULET_BIN   use this rivulet binary instead of `cargo build --release`
#   BENCH_KEEP=1  keep the work directory
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-7}

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'magnet bench: FAILED: %s\n' "$*" >&2; exit 1; }

source "$ROOT/benches/payload.sh"
bench_setup rivulet-magnetbench

mkdir -p "$WORK/src"
NAME=$(py mkdata multi_awkward "$WORK/src") || die "mkdata failed"
T="$WORK/case.torrent"
/usr/bin/python3 "$LT" mktorrent "$WORK/src/$NAME" "$T" 16384 http://127.0.0.1:9/announce \
    >"$WORK/mktorrent.log" 2>&1 || die "libtorrent mktorrent failed"
HASH=$(py infohash "$T") || die "no info hash"
read -r SPORT < <(py freeports 1)
bg 3600 "$WORK/seed.log" /usr/bin/python3 -u "$LT" seed "$T" "$WORK/src" "$SPORT"
for _ in $(seq 300); do
    grep -q seeding "$WORK/seed.log" && break
    sleep 0.1
done
grep -q seeding "$WORK/seed.log" || die "the libtorrent seeder did not start: $(tail -n 5 "$WORK/seed.log")"
LINK="magnet:?xt=urn:btih:$HASH&x.pe=127.0.0.1:$SPORT"
log "seeder on 127.0.0.1:$SPORT, link $LINK"

RESULTS="$WORK/results"
: >"$RESULTS"

run_one() {
    local client=$1 run=$2 port out logf rc took
    read -r port < <(py freeports 1)
    out="$WORK/out-$client-$run"
    logf="$WORK/$client-$run.log"
    mkdir -p "$out"
    case "$client" in
        rivulet)
            bg 120 "$logf" "$RIV" download "$LINK" -o "$out" --port "$port" --bind 127.0.0.1 \
                --state-dir "$WORK/state-$run" ;;
        libtorrent)
            bg 120 "$logf" /usr/bin/python3 -u "$LT" leech "$LINK" "$out" "$port" 110 30 ;;
    esac
    rc=0
    wait "$BG_PID" || rc=$?
    [ $rc -eq 0 ] || { tail -n 20 "$logf" >&2; die "$client run $run exited with $rc"; }
    took=$(sed -n 's/.*metadata in \([0-9.]*\) s.*/\1/p' "$logf" | tail -n 1)
    [ -n "$took" ] || die "$client run $run: no 'metadata in' in $logf"
    py compare "$WORK/src/$NAME" "$out/$NAME" >&2 || die "$client run $run: the download differs"
    echo "$client $run $took" >>"$RESULTS"
    log "$client run $run: metadata in $took s (download verified)"
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

python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    c, r, t = line.split()
    rows.setdefault(c, []).append(float(t) * 1000)
print('%-11s %s' % ('client', 'metadata ms per run'))
for c in ('rivulet', 'libtorrent'):
    print('%-11s %s' % (c, ' '.join('%.1f' % t for t in rows[c])))
med = {c: statistics.median(v) for c, v in rows.items()}
print('medians over %d runs: rivulet %.1f ms, libtorrent %.1f ms, ratio rivulet/libtorrent %.2f'
      % (len(rows['rivulet']), med['rivulet'], med['libtorrent'], med['rivulet'] / med['libtorrent']))
print('target: rivulet under 1000 ms: %s' % ('PASS' if med['rivulet'] < 1000 else 'FAIL'))
PY
