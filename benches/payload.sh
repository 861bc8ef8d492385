# Shared by the benchmarks in benches/: one opentracker on 127.0.0.1 and one random payload
# with its torrent, announced there. Source it after tests/interop/lib.sh, with `log`, `die`,
# `py` (tests/interop/bt.py), WORK, SIZE_MIB and BENCH_PIECE_LOG2 defined.

# start_tracker_and_payload PORT : starts opentracker on PORT, writes SIZE_MIB MiB (+ 4321
# bytes, so the last piece is a short one) to $SRC, makes $T with 2^BENCH_PIECE_LOG2-byte
# pieces, and whitelists its info hash ($HASH). Sets OT_PID, SRC, T, HASH.
start_tracker_and_payload() {
    local port=$1 whitelist="$WORK/whitelist" child
    : >"$whitelist"
    chmod 644 "$whitelist"
    bg 86400 "$WORK/opentracker.log" opentracker -i 127.0.0.1 -p "$port" -P "$port" \
        -d / -w "$whitelist" -A 127.0.0.1
    OT_PID=$BG_PID

    mkdir -p "$WORK/seed"
    SRC="$WORK/seed/payload.bin"
    log "writing ${SIZE_MIB} MiB of random data"
    { head -c "$((SIZE_MIB * 1048576))" /dev/urandom; head -c 4321 /dev/urandom; } >"$SRC" \
        || die "cannot write the payload"
    T="$WORK/payload.torrent"
    timeout 3600 mktorrent -d -l "$BENCH_PIECE_LOG2" -a "http://127.0.0.1:$port/announce" \
        -o "$T" "$SRC" >"$WORK/mktorrent.log" 2>&1 || die "mktorrent failed: $(tail -n 3 "$WORK/mktorrent.log")"
    HASH=$(py infohash "$T") || die "cannot read the info hash"
    echo "$HASH" >>"$whitelist"
    child=$(pgrep -P "$OT_PID" | head -n 1)
    [ -n "$child" ] || die "opentracker is not running: $(tail -n 5 "$WORK/opentracker.log")"
    kill -HUP "$child"
    py wlwait "$port" 15 "$HASH" || die "opentracker does not accept the torrent"
}
