# Shared by the benchmarks in benches/: their set-up (the clean-up at exit, the tools, the
# rivulet binary, the helpers, the work directories), then one opentracker on 127.0.0.1 and
# one random payload with its torrent, announced there. Source it with ROOT (the checkout),
# `log` and `die` defined; it sources tests/interop/lib.sh (processes, package installs).
# start_tracker_and_payload also wants SIZE_MIB and BENCH_PIECE_LOG2.

source "$ROOT/tests/interop/lib.sh"

# bench_setup NAME [COMMAND PACKAGE]... : what both benchmarks do first.
# - At exit: ends every process started by bg, deletes WORK (BENCH_KEEP=1 keeps it) and
#   LEECH_DIR.
# - Installs what is missing of python3, opentracker, mktorrent, each PACKAGE whose COMMAND
#   (a name on PATH or an absolute path) is not there, procps and python3-libtorrent.
# - RIV: RIVULET_BIN, or a `cargo build --release` of rivulet; exports RUST_LOG (default
#   rivulet=info) and NO_COLOR.
# - BT and LT (tests/interop/bt.py, ltdrive.py) and `py`: bencode, tracker probes,
#   `/usr/bin/time` parsing and /proc sampling, shared with the interop suite.
# - WORK: a fresh $TMPDIR/NAME.XXXXXX; LEECH_DIR, where the leechers write: WORK, or with
#   BENCH_LEECH_DIR a fresh BENCH_LEECH_DIR/NAME-out.XXXXXX.
bench_setup() {
    local name=$1 need_install=()
    shift
    WORK=""
    LEECH_DIR=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM HUP

    command -v python3 >/dev/null || need_install+=(python3)
    command -v opentracker >/dev/null || need_install+=(opentracker)
    command -v mktorrent >/dev/null || need_install+=(mktorrent)
    while [ $# -ge 2 ]; do
        command -v "$1" >/dev/null || need_install+=("$2")
        shift 2
    done
    { command -v pgrep >/dev/null && command -v pkill >/dev/null; } || need_install+=(procps)
    # libtorrent's Python module is built for Debian's /usr/bin/python3 only
    /usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need_install+=(python3-libtorrent)
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

    BT="$ROOT/tests/interop/bt.py"
    LT="$ROOT/tests/interop/ltdrive.py"
    [ -f "$BT" ] && [ -f "$LT" ] || die "missing $BT or $LT"

    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX") || die "mktemp failed"
    chmod 755 "$WORK"     # opentracker runs as nobody and reads the whitelist in here
    LEECH_DIR=${BENCH_LEECH_DIR:-$WORK}
    if [ "$LEECH_DIR" != "$WORK" ]; then
        LEECH_DIR=$(mktemp -d "$LEECH_DIR/$name-out.XXXXXX") || die "cannot write in $BENCH_LEECH_DIR"
    fi
}

py() { python3 "$BT" "$@"; }

# end_run OUT RUN CONDITION... : after a run, deletes its download OUT and its state
# ($WORK/state-RUN) and writes the dirty pages back, so that the next run starts with none;
# then waits up to 15 s for the tracker's swarm to meet every CONDITION (see bt.py
# scrapewait), and if it does not, says the seeds it still counts (and the leechers, when a
# CONDITION is about them).
end_run() {
    local out=$1 run=$2 counts said
    shift 2
    rm -rf "$out" "$WORK/state-$run"
    timeout 600 sync
    counts=$(py scrapewait "$TRACKER_PORT" "$HASH" 15 0.5 "$@") && return 0
    said="${counts% *} seed(s)"
    [[ "$*" == *incomplete* ]] && said+=", ${counts#* } leecher(s)"
    log "the tracker still counts $said after the run"
}

bench_cleanup() {
    cleanup_work "${BENCH_KEEP:-0}"
    if [ -n "$LEECH_DIR" ] && [ "$LEECH_DIR" != "$WORK" ] && [ -d "$LEECH_DIR" ]; then
        rm -rf "$LEECH_DIR"
    fi
}

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
