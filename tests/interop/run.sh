#!/usr/bin/env bash
# Rivulet interop suite: Rivulet against real BitTorrent software on loopback.
#
#   bash tests/interop/run.sh
#
# Installs (if missing) opentracker, mktorrent, aria2, transmission-cli and
# python3-libtorrent, builds rivulet (debug) unless RIVULET_BIN points at a binary,
# starts one opentracker on 127.0.0.1 and runs each case with its own random data and
# torrent (so its own info hash: stale peers of an earlier case never show up in a
# later one). Helpers live next to this script: bt.py (bencode, tracker probes, test
# data, compare) and ltdrive.py (libtorrent seeder/leecher, run by /usr/bin/python3).
#
# Prints `PASS name` / `FAIL name` per case and `N passed, M failed` at the end;
# exits non-zero if any case failed.
#
# Environment:
#   RIVULET_BIN       use this rivulet binary instead of building one
#   INTEROP_CASES     extended regex: run only the cases whose name matches
#   INTEROP_KEEP=1    keep the work directory (data, torrents, logs) afterwards
#   CASE_TIMEOUT      seconds one case may take (default 120); some cases have their
#                     own limits (CASE_TIMEOUTS below); a CASE_TIMEOUT given in the
#                     environment raises those that are smaller
#
# Everything listens on and talks to 127.0.0.1 only; DHT, LPD, PEX, UPnP are off.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CASE_TIMEOUT_GIVEN=${CASE_TIMEOUT:+1}
CASE_TIMEOUT=${CASE_TIMEOUT:-120}
INTEROP_CASES=${INTEROP_CASES:-}

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'interop: %s\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------- processes
# bg, stop_pid, stop_all_pids, cleanup_work, install_missing (shared with benches/)
source "$ROOT/tests/interop/lib.sh"
WORK=""
OT_PID=""

trap 'cleanup_work "${INTEROP_KEEP:-0}"' EXIT
trap 'exit 130' INT TERM HUP

# wait_pid PID : wait for a process started by bg, return its exit code.
wait_pid() {
    local rc=0
    wait "$1" 2>/dev/null || rc=$?
    return $rc
}

# ---------------------------------------------------------------- tools
need_install=()
command -v python3 >/dev/null || need_install+=(python3)
command -v opentracker >/dev/null || need_install+=(opentracker)
command -v mktorrent >/dev/null || need_install+=(mktorrent)
command -v aria2c >/dev/null || need_install+=(aria2)
{ command -v transmission-cli >/dev/null && command -v transmission-show >/dev/null; } \
    || need_install+=(transmission-cli)
command -v stdbuf >/dev/null || need_install+=(coreutils)
command -v ip >/dev/null || need_install+=(iproute2)
command -v unshare >/dev/null || need_install+=(util-linux)
{ command -v pgrep >/dev/null && command -v pkill >/dev/null; } || need_install+=(procps)
# libtorrent's Python module is built for Debian's /usr/bin/python3 only
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need_install+=(python3-libtorrent)
install_missing ${need_install[@]+"${need_install[@]}"}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rivulet-interop.XXXXXX") || die "mktemp failed"
# opentracker drops root to nobody and must still read the whitelist in here.
chmod 755 "$WORK"
# the shared helpers (bencode, tracker probes, data, compare) and the libtorrent driver
BT="$ROOT/tests/interop/bt.py"
LT="$ROOT/tests/interop/ltdrive.py"
[ -f "$BT" ] && [ -f "$LT" ] || die "missing $BT or $LT"
py() { python3 "$BT" "$@"; }
# (ltdrive.py runs as `/usr/bin/python3 -u "$LT" ...`: libtorrent's Python module exists
# for Debian's interpreter only, and -u lets its progress lines reach the logs at once)

# ---------------------------------------------------------------- rivulet
RIVULET_OK=1
BUILD_LOG="$WORK/cargo-build.log"
if [ -n "${RIVULET_BIN:-}" ]; then
    RIV=$RIVULET_BIN
    [ -x "$RIV" ] || { log "RIVULET_BIN=$RIV is not an executable"; RIVULET_OK=0; }
else
    log "building rivulet (cargo build --bin rivulet)"
    if (cd "$ROOT" && timeout 2400 cargo build --bin rivulet) >"$BUILD_LOG" 2>&1; then
        RIV="${CARGO_TARGET_DIR:-$ROOT/target}/debug/rivulet"
        [ -x "$RIV" ] || { log "no binary at $RIV after the build"; RIVULET_OK=0; }
    else
        log "cargo build failed:"
        tail -n 40 "$BUILD_LOG" >&2
        RIVULET_OK=0
        RIV=/nonexistent/rivulet
    fi
fi
case "$RIV" in /*) ;; *) RIV="$PWD/$RIV" ;; esac
export RUST_LOG=${RUST_LOG:-rivulet=debug}
export RUST_BACKTRACE=1
export NO_COLOR=1

# ---------------------------------------------------------------- tracker
read -r TRACKER_PORT < <(py freeports 1)
ANNOUNCE="http://127.0.0.1:$TRACKER_PORT/announce"
WHITELIST="$WORK/whitelist"
echo 0000000000000000000000000000000000000000 >"$WHITELIST"
chmod 644 "$WHITELIST"
CASE_PIDS=()
# -i must come before -p/-P; -d / so that it finds the whitelist by absolute path
bg 3600 "$WORK/opentracker.log" opentracker -i 127.0.0.1 -p "$TRACKER_PORT" -P "$TRACKER_PORT" \
    -d / -w "$WHITELIST" -A 127.0.0.1
OT_PID=$BG_PID
CASE_PIDS=()

# whitelist_add HASH... : add to the whitelist, SIGHUP opentracker, wait for the reload
whitelist_add() {
    local h child
    for h in "$@"; do echo "$h" >>"$WHITELIST"; done
    child=$(pgrep -P "$OT_PID" | head -n 1)
    [ -n "$child" ] || { echo "opentracker is not running"; return 1; }
    kill -HUP "$child"
    py wlwait "$TRACKER_PORT" 15 "$@"
}

# wait until the tracker answers at all
py wlwait "$TRACKER_PORT" 10 0000000000000000000000000000000000000000 \
    || { tail -n 20 "$WORK/opentracker.log" >&2; die "opentracker did not come up"; }
log "opentracker on 127.0.0.1:$TRACKER_PORT, work dir $WORK"

# ---------------------------------------------------------------- clients
ARIA_COMMON=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false
    --enable-peer-exchange=false --disable-ipv6=true --interface=127.0.0.1 --no-conf=true
    --follow-torrent=mem --bt-save-metadata=false --auto-save-interval=0
    --file-allocation=falloc --allow-overwrite=true --summary-interval=0 --console-log-level=notice)

# Each case runs in its own directory C with C/src (content parent), C/out
# (leecher's output parent), C/*.log. Functions below use C, T (torrent), NAME
# (content name inside src/out) and DEADLINE (epoch seconds).

remaining() { local r=$((DEADLINE - $(date +%s))); [ $r -gt 1 ] && echo $r || echo 1; }

seed_aria2() {
    local port=$1
    bg "$(remaining)" "$C/aria2-seed.log" aria2c "${ARIA_COMMON[@]}" --seed-ratio=0.0 \
        --bt-seed-unverified=true --check-integrity=false --listen-port="$port" \
        --bt-tracker-interval=2 --dir="$C/src" "$T"
}

seed_transmission() {
    local port=$1
    py tsettings "$C/tconf" "$port" || return 1
    bg "$(remaining)" "$C/transmission-seed.log" stdbuf -o0 -e0 transmission-cli -g "$C/tconf" \
        -w "$C/src" -p "$port" -M -D -U -et "$T"
}

# RIV_LIMITED: a command prefix for every rivulet a case starts (empty: none); a case sets it
# locally, e.g. to run rivulet under a lower open-file limit.
RIV_LIMITED=()
# RIV_NET: extra options for every rivulet seed and download a case starts (empty: none).
RIV_NET=()
# RIV_BIND: the address every rivulet seed and download binds to.
RIV_BIND=127.0.0.1

# seed_rivulet PORT [DIR] : seeds from DIR (default $C/src)
seed_rivulet() {
    local port=$1 dir=${2:-$C/src}
    mkdir -p "$C/state-seed"
    bg "$(remaining)" "$C/rivulet-seed.log" ${RIV_LIMITED[@]+"${RIV_LIMITED[@]}"} "$RIV" seed "$T" \
        "$dir" --port "$port" --bind "$RIV_BIND" --state-dir "$C/state-seed" ${RIV_NET[@]+"${RIV_NET[@]}"}
    RIVULET_SEED_PID=$BG_PID
}

seed_libtorrent() {
    local port=$1
    bg "$(remaining)" "$C/libtorrent-seed.log" /usr/bin/python3 -u "$LT" seed "$T" "$C/src" "$port"
}

# start_leech_CLIENT PORT OUT TAG : start a leecher filling OUT, logging to
# $C/CLIENT-leechTAG.log; sets BG_PID. leech_CLIENT PORT: into $C/out, and wait for it.
start_leech_aria2() {
    local port=$1 out=$2 tag=$3
    bg "$(remaining)" "$C/aria2-leech$tag.log" aria2c "${ARIA_COMMON[@]}" --seed-time=0 \
        --listen-port="$port" --dir="$out" "${LEECH_T:-$T}"
}

start_leech_rivulet() {
    local port=$1 out=$2 tag=$3
    mkdir -p "$C/state-leech$tag"
    bg "$(remaining)" "$C/rivulet-leech$tag.log" ${RIV_LIMITED[@]+"${RIV_LIMITED[@]}"} "$RIV" \
        download "${LEECH_T:-$T}" -o "$out" --port "$port" --bind "$RIV_BIND" --state-dir "$C/state-leech$tag" \
        ${RIV_NET[@]+"${RIV_NET[@]}"}
}

# The driver gives up 5 s before the case's deadline (printing its last progress and its
# peers' request queues), or once no byte arrived for LT_STALL seconds (default 60).
start_leech_libtorrent() {
    local port=$1 out=$2 tag=$3 r
    r=$(remaining)
    bg "$r" "$C/libtorrent-leech$tag.log" /usr/bin/python3 -u "$LT" leech "${LEECH_T:-$T}" "$out" "$port" \
        "$(( r > 10 ? r - 5 : r ))" "${LT_STALL:-60}"
}

leech_aria2() { start_leech_aria2 "$1" "$C/out" "" && wait_pid "$BG_PID"; }
leech_rivulet() { start_leech_rivulet "$1" "$C/out" "" && wait_pid "$BG_PID"; }
leech_libtorrent() {
    local rc=0
    start_leech_libtorrent "$1" "$C/out" "" || return 1
    wait_pid "$BG_PID" || rc=$?
    grep -E 'finished in|TIMEOUT|STALLED' "$C/libtorrent-leech.log" | tail -n 1
    return $rc
}

# make_torrent KIND TOOL [extra args...] : data into $C/src, torrent into $T, whitelisted.
# KIND is a data kind of bt.py's mkdata (single, multi, single16, single64, single256,
# multi_awkward); NAME becomes the content's name. TOOL is mktorrent (args: its flags),
# rivulet (args: `rivulet create` flags) or libtorrent (args: the piece length in bytes, and
# `hybrid` for a v1 + v2 torrent with padding files, `padded` for a v1 one with them).
make_torrent() {
    local kind=$1 tool=$2
    shift 2
    NAME=$(py mkdata "$kind" "$C/src") && [ -n "$NAME" ] || { echo "mkdata $kind failed"; return 1; }
    case "$tool" in
        mktorrent)
            timeout 60 mktorrent -d -a "$ANNOUNCE" "$@" -o "$T" "$C/src/$NAME" >"$C/mktorrent.log" 2>&1 \
                || { echo "mktorrent failed"; return 1; } ;;
        rivulet)
            timeout 60 "$RIV" create "$C/src/$NAME" -o "$T" --tracker "$ANNOUNCE" "$@" \
                >"$C/rivulet-create.log" 2>&1 || { echo "rivulet create failed"; return 1; }
            [ -s "$T" ] || { echo "rivulet create wrote no torrent"; return 1; } ;;
        libtorrent)
            timeout 120 /usr/bin/python3 "$LT" mktorrent "$C/src/$NAME" "$T" "$1" "$ANNOUNCE" ${2:-} \
                >"$C/libtorrent-create.log" 2>&1 || { echo "libtorrent mktorrent failed"; return 1; } ;;
        *) echo "unknown torrent maker $tool"; return 1 ;;
    esac
    HASH=$(py infohash "$T") || { echo "cannot read the info hash of $T"; return 1; }
    echo "info hash $HASH"
    whitelist_add "$HASH"
}

# check_result [OUT] : $C/src/$NAME and OUT/$NAME (default $C/out) are identical
check_result() {
    local diffs out=${1:-$C/out}
    if diffs=$(py compare "$C/src/$NAME" "$out/$NAME"); then
        echo "content identical${1:+ in $out}"
        return 0
    fi
    echo "content differs${1:+ in $out}:"
    echo "$diffs"
    return 1
}

# transfer SEEDER LEECHER : seeder serves $C/src, leecher fills $C/out, compare
transfer() {
    local seeder=$1 leecher=$2 sport lport rc
    read -r sport lport < <(py freeports 2)
    "seed_$seeder" "$sport" || return 1
    py waitseed "$TRACKER_PORT" "$HASH" "$(( $(remaining) > 60 ? 60 : $(remaining) ))" || return 1
    echo "$seeder seeder listed by the tracker after $(( $(date +%s) - CASE_START )) s"
    mkdir -p "$C/out"
    "leech_$leecher" "$lport"
    rc=$?
    echo "$leecher leecher exited with $rc after $(( $(date +%s) - CASE_START )) s"
    [ $rc -eq 0 ] || return 1
    check_result
}

# magnet_transfer SEEDER LEECHER : transfer, the leecher starting from the torrent's magnet
# link (with the tracker), so it fetches the metadata from the seeder first (BEP 9)
magnet_transfer() {
    local LEECH_T
    LEECH_T=$(py magnet "$T" "$ANNOUNCE") || return 1
    echo "leecher adds $LEECH_T"
    transfer "$@"
}

# over_udp CMD... : runs CMD with ANNOUNCE the UDP (BEP 15) URL of the tracker on TRACKER_PORT
over_udp() {
    local ANNOUNCE="udp://127.0.0.1:$TRACKER_PORT/announce"
    "$@"
}

# make_and_transfer SEEDER LEECHER KIND TOOL [ARGS...] : make_torrent KIND TOOL ARGS, then
# transfer SEEDER LEECHER
make_and_transfer() {
    local seeder=$1 leecher=$2
    shift 2
    make_torrent "$@" && transfer "$seeder" "$leecher"
}

# transfer_case TRACKER SEEDER LEECHER KIND TOOL [ARGS...] : runs a row of TRANSFER_CASES
transfer_case() {
    local tracker=$1
    shift
    case "$tracker" in
        opentracker) make_and_transfer "$@" ;;
        opentracker-udp) over_udp make_and_transfer "$@" ;;
        opentracker-magnet)
            local seeder=$1 leecher=$2
            shift 2
            make_torrent "$@" && magnet_transfer "$seeder" "$leecher" ;;
        rivulet-tracker) with_rivulet_tracker make_and_transfer "$@" ;;
        rivulet-tracker-udp) with_rivulet_tracker over_udp make_and_transfer "$@" ;;
        *) echo "unknown tracker $tracker"; return 1 ;;
    esac
}

# ---------------------------------------------------------------- cases
# A case is a row of TRANSFER_CASES or a function case_NAME; CASES (below) lists them in the
# order they run.

# The cases that are one torrent and one download: NAME -> "TRACKER SEEDER LEECHER KIND TOOL
# [ARGS...]". TRACKER is the suite's opentracker or a fresh `rivulet tracker` of the case
# (rivulet-tracker, see with_rivulet_tracker), announced to over HTTP or, with -udp, over
# UDP (BEP 15), or opentracker-magnet: the suite's opentracker, the leecher starting from a
# magnet link (magnet_transfer); SEEDER serves KIND's data to LEECHER (transfer); TOOL and
# ARGS make the torrent (make_torrent).
declare -A TRANSFER_CASES=(
    # checks the harness itself, no Rivulet involved
    [harness_aria2_to_aria2]="opentracker aria2 aria2 multi mktorrent -l 15"
    [aria2_seed_rivulet_leech_single]="opentracker aria2 rivulet single mktorrent -l 15"
    [aria2_seed_rivulet_leech_multi]="opentracker aria2 rivulet multi mktorrent -l 16"
    [transmission_seed_rivulet_leech_single]="opentracker transmission rivulet single mktorrent -l 16"
    [transmission_seed_rivulet_leech_multi]="opentracker transmission rivulet multi mktorrent -l 15"
    # mktorrent's default 256 KiB pieces
    [rivulet_seed_aria2_leech_single]="opentracker rivulet aria2 single mktorrent"
    [rivulet_seed_aria2_leech_multi]="opentracker rivulet aria2 multi mktorrent -l 15"
    [rivulet_create_single_aria2]="opentracker rivulet aria2 single rivulet"
    [rivulet_create_multi_aria2]="opentracker rivulet aria2 multi rivulet --piece-length 32768"
    # seeder and leecher both announce over UDP (BEP 15)
    [rivulet_udp_tracker]="opentracker-udp rivulet rivulet single rivulet"
    # ---- Rivulet's own tracker (`rivulet tracker`) with real clients
    [rivulet_tracker_aria2_to_aria2]="rivulet-tracker aria2 aria2 multi mktorrent -l 15"
    [rivulet_tracker_transmission_to_aria2]="rivulet-tracker transmission aria2 single mktorrent -l 16"
    # transmission ignores loopback peers from trackers: Rivulet learns of it on a re-announce
    # (the tracker's 5 s interval, clamped to Rivulet's 15 s floor) and dials it
    [rivulet_tracker_rivulet_to_transmission]="rivulet-tracker rivulet transmission single rivulet --piece-length 65536"
    # Rivulet's UDP client against Rivulet's tracker
    [rivulet_tracker_udp]="rivulet-tracker-udp rivulet rivulet multi rivulet"
    # ---- libtorrent (python3-libtorrent: the engine of qBittorrent and Deluge)
    # It keeps up to 500 requests in flight to a fast peer (unless the peer's BEP 10 handshake
    # says reqq) and expects every one of them answered or rejected: a seeder that drops
    # requests leaves it stalled short of 100%.
    # checks the libtorrent driver, no Rivulet involved
    [harness_libtorrent_to_libtorrent]="opentracker libtorrent libtorrent multi_awkward mktorrent -l 16"
    # the stall of the bug report: 64 MiB, 256 KiB pieces
    [rivulet_seed_libtorrent_64m_256k]="opentracker rivulet libtorrent single64 mktorrent -l 18"
    [rivulet_seed_libtorrent_256m_4m]="opentracker rivulet libtorrent single256 mktorrent -l 22"
    [rivulet_seed_libtorrent_multi_64k]="opentracker rivulet libtorrent multi_awkward mktorrent -l 16"
    # one block per piece: 1000+ pieces; mktorrent's pieces are 32 KiB at the least, so
    # libtorrent makes this torrent
    [rivulet_seed_libtorrent_16k]="opentracker rivulet libtorrent single16 libtorrent 16384"
    # a torrent made by libtorrent (v1 only)
    [rivulet_seed_libtorrent_lt_torrent]="opentracker rivulet libtorrent multi_awkward libtorrent 131072"
    [rivulet_seed_aria2_64m]="opentracker rivulet aria2 single64 mktorrent -l 18"
    [libtorrent_seed_rivulet_leech_64m]="opentracker libtorrent rivulet single64 mktorrent -l 18"
    [libtorrent_seed_rivulet_leech_multi]="opentracker libtorrent rivulet multi_awkward mktorrent -l 15"
    # transmission ignores loopback peers from trackers: Rivulet learns of it on a
    # re-announce (Rivulet's tracker, 5 s interval) and dials it
    [rivulet_seed_transmission_64m]="rivulet-tracker rivulet transmission single64 mktorrent -l 18"
    # ---- magnet links (BEP 9): the leecher has only the link, with the tracker, and fetches
    # the info dictionary from the seeder before it downloads; a many-file torrent's metadata
    # is several 16 KiB pieces
    [rivulet_seed_libtorrent_magnet]="opentracker-magnet rivulet libtorrent single64 mktorrent -l 18"
    [rivulet_seed_aria2_magnet]="opentracker-magnet rivulet aria2 multi_awkward libtorrent 16384"
    [libtorrent_seed_rivulet_magnet]="opentracker-magnet libtorrent rivulet single64 mktorrent -l 18"
    [aria2_seed_rivulet_magnet]="opentracker-magnet aria2 rivulet multi_awkward libtorrent 16384"
    [rivulet_seed_rivulet_magnet]="opentracker-magnet rivulet rivulet multi_awkward rivulet --piece-length 16384"
)

case_rivulet_info() {
    # `rivulet info` agrees with the info hash and name computed here
    local out want name
    make_torrent multi mktorrent -l 15 || return 1
    out=$(timeout 30 "$RIV" info "$T" 2>"$C/rivulet-info.log") || { echo "rivulet info failed"; return 1; }
    printf '%s\n' "$out" >>"$C/rivulet-info.log"
    want=$HASH
    grep -Eiq "^ *info[ _-]?hash: *$want\b" <<<"$out" \
        || { echo "rivulet info does not print 'info hash: $want':"; echo "$out"; return 1; }
    name=$(py name "$T")
    grep -Eq "^ *name: *$name\b" <<<"$out" \
        || { echo "rivulet info does not print 'name: $name':"; echo "$out"; return 1; }
    echo "rivulet info agrees: $want $name"
}
# transmission_verify : transmission-show parses $T (same info hash), and
# transmission-cli checks $C/src against it and reaches "Seeding" (100% verified)
transmission_verify() {
    local shown port i
    shown=$(timeout 30 transmission-show "$T" 2>&1)
    printf '%s\n' "$shown" >"$C/transmission-show.log"
    grep -Eiq "^ *Hash: *$HASH\$" <<<"$shown" \
        || { echo "transmission-show disagrees on the info hash ($HASH)"; return 1; }
    echo "transmission-show: same info hash"
    if [ "${1:-}" = private ]; then
        grep -q "Private torrent" <<<"$shown" || { echo "transmission-show: not private"; return 1; }
        echo "transmission-show: private torrent"
    fi
    read -r port < <(py freeports 1)
    seed_transmission "$port" || return 1
    # it prints one status line a second: "Seeding, ..." once all pieces verified,
    # "Progress: N%, ..." when some are missing or bad
    for i in $(seq $(( $(remaining) * 2 ))); do
        if grep -q "Seeding" "$C/transmission-seed.log"; then
            echo "transmission verified the data: Seeding"
            return 0
        fi
        if [ "$(tr '\r' '\n' <"$C/transmission-seed.log" | grep -c '^Progress: ')" -ge 10 ]; then
            echo "transmission finds the data incomplete:"
            tr '\r' '\n' <"$C/transmission-seed.log" | grep '^Progress: ' | tail -n 1
            return 1
        fi
        kill -0 "$BG_PID" 2>/dev/null || break
        sleep 0.5
    done
    echo "transmission never reported Seeding (data not verified as complete)"
    return 1
}
case_rivulet_create_single_transmission() {
    make_torrent single rivulet --piece-length 65536 && transmission_verify
}
case_rivulet_create_multi_transmission() {
    make_torrent multi rivulet --piece-length 16384 --private --comment "interop test" \
        && transmission_verify private
}

case_rivulet_scrape_opentracker() {   # BEP 48 (HTTP) and BEP 15 (UDP) scrape against opentracker
    local sport out
    make_torrent single mktorrent -l 16 -a "udp://127.0.0.1:$TRACKER_PORT/announce" || return 1
    read -r sport < <(py freeports 1)
    seed_aria2 "$sport" || return 1
    py waitseed "$TRACKER_PORT" "$HASH" 30 || return 1
    out=$(timeout 30 "$RIV" scrape "$T" 2>"$C/rivulet-scrape.log") || { echo "rivulet scrape failed: $out"; return 1; }
    echo "$out"
    grep -q "^http://127.0.0.1:$TRACKER_PORT/announce: 1 seeders, 0 leechers" <<<"$out" \
        || { echo "HTTP scrape disagrees with the swarm"; return 1; }
    grep -q "^udp://127.0.0.1:$TRACKER_PORT/announce: 1 seeders, 0 leechers" <<<"$out" \
        || { echo "UDP scrape disagrees with the swarm"; return 1; }
}

# ---- Rivulet's own tracker (`rivulet tracker`) with real clients
# with_rivulet_tracker CASE_BODY... : runs the rest of the case with TRACKER_PORT and ANNOUNCE
# pointing at a fresh `rivulet tracker` (open, 5 s interval) instead of opentracker, on
# 127.0.0.1 (or on TRACKER_HOST, e.g. [::1], when set).
with_rivulet_tracker() {
    local TRACKER_PORT ANNOUNCE host=${TRACKER_HOST:-127.0.0.1}
    read -r TRACKER_PORT < <(py freeports 1)
    ANNOUNCE="http://$host:$TRACKER_PORT/announce"
    bg "$(remaining)" "$C/rivulet-tracker.log" "$RIV" tracker --port "$TRACKER_PORT" \
        --bind "$(tr -d '[]' <<<"$host")" --open --interval 5
    py wlwait "$TRACKER_PORT" 15 0000000000000000000000000000000000000000 \
        || { echo "rivulet tracker did not come up"; return 1; }
    echo "rivulet tracker on $host:$TRACKER_PORT"
    "$@"
}

leech_transmission() {
    local port=$1 i
    py tsettings "$C/tconf-leech" "$port" || return 1
    bg "$(remaining)" "$C/transmission-leech.log" stdbuf -o0 -e0 transmission-cli \
        -g "$C/tconf-leech" -w "$C/out" -p "$port" -M -D -U "$T"
    # it prints "Seeding" once the download is complete and verified
    for i in $(seq $(( $(remaining) * 2 ))); do
        grep -q "Seeding" "$C/transmission-leech.log" && return 0
        kill -0 "$BG_PID" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}

case_rivulet_tracker_stopped_and_scrape() {
    # an aria2 leecher and a Rivulet seeder; scrape counts follow the swarm, and a seeder
    # that stops (SIGTERM: Rivulet announces `stopped`) leaves it at once
    with_rivulet_tracker eval '
        make_torrent single rivulet && transfer rivulet aria2 || return 1
        read -r c i < <(py scrape_counts "$TRACKER_PORT" "$HASH")
        echo "scrape after the download: complete=$c incomplete=$i"
        [ "$c" -ge 1 ] || { echo "the seeder is not counted"; return 1; }
        stop_pid "$RIVULET_SEED_PID"
        read -r c i < <(py scrapewait "$TRACKER_PORT" "$HASH" 10 0.5 complete=0)
        echo "scrape after the seeder stopped: complete=$c incomplete=$i"
        [ "$c" -eq 0 ]'
}

# padded_transfer SEEDER LEECHER [KIND] : a torrent with BEP 47 padding files made by
# libtorrent 2 (KIND hybrid: v1 + v2, as qBittorrent makes them by default; padded: v1 only)
# moves from SEEDER to LEECHER whole, and no padding file or `.pad` folder appears in the copy
padded_transfer() {
    local pads kind want=${3:-hybrid}
    make_torrent multi_awkward libtorrent 32768 "$want" || return 1
    read -r pads kind < <(py pads "$T")
    echo "$kind torrent with $pads padding files"
    [ "$kind" = "${want/padded/v1}" ] && [ "${pads:-0}" -gt 0 ] \
        || { echo "not a $want torrent with padding files"; return 1; }
    transfer "$1" "$2" || return 1
    if [ -e "$C/out/$NAME/.pad" ]; then
        echo "a .pad folder was created"
        return 1
    fi
    echo "no .pad folder in the copy"
}
case_libtorrent_seed_rivulet_leech_hybrid() { padded_transfer libtorrent rivulet; }
case_rivulet_seed_libtorrent_hybrid() { padded_transfer rivulet libtorrent; }
# Debian's aria2 1.36 computes a wrong info hash for hybrid torrents (aria2 issue #1903,
# fixed after 1.36), so with aria2 the padding files come in a v1 torrent; it creates them
# as zero-filled files beside the data it seeds.
case_aria2_seed_rivulet_leech_padded() { padded_transfer aria2 rivulet padded; }

# The DHT with libtorrent, both ways, in a network namespace with only lo (tests/interop/dht.sh).
# encrypted_transfer SEEDER LEECHER METHOD : 64 MiB with message stream encryption forced on
# both sides. libtorrent: in_enc_policy and out_enc_policy forced (0), allowed_enc_level METHOD
# (rc4: 2, plaintext: 1: the handshake is encrypted, the payload not); Rivulet: --encryption
# require for RC4, prefer for plaintext (it offers both, libtorrent selects plaintext).
# libtorrent's log must name the connection's protection.
encrypted_transfer() {
    local seeder=$1 leecher=$2 method=$3 level policy expect
    case "$method" in
        rc4) level=2 policy=require expect='rc4 encrypted' ;;
        plaintext) level=1 policy=prefer expect='plaintext after an encrypted handshake' ;;
    esac
    local LT_SETTINGS="{\"in_enc_policy\": 0, \"out_enc_policy\": 0, \"allowed_enc_level\": $level}"
    export LT_SETTINGS
    local RIV_NET=(--encryption "$policy")
    make_torrent single64 mktorrent -l 18 && transfer "$seeder" "$leecher" || return 1
    local side=leech
    [ "$seeder" = libtorrent ] && side=seed
    grep "peer 127.0.0.1" "$C/libtorrent-$side.log" | head -n 3
    grep -q "$expect" "$C/libtorrent-$side.log" || { echo "libtorrent did not see: $expect"; return 1; }
    echo "libtorrent saw the connection: $expect"
}
case_libtorrent_seed_rivulet_leech_rc4() { encrypted_transfer libtorrent rivulet rc4; }
case_rivulet_seed_libtorrent_rc4() { encrypted_transfer rivulet libtorrent rc4; }
case_libtorrent_seed_rivulet_leech_obfuscated() { encrypted_transfer libtorrent rivulet plaintext; }
case_rivulet_seed_libtorrent_obfuscated() { encrypted_transfer rivulet libtorrent plaintext; }

# ipv6_transfer SEEDER LEECHER : 64 MiB over ::1 alone. Rivulet's tracker listens on [::1] and
# hands out peers6 (BEP 7); every client listens and dials on ::1 only (Rivulet --bind ::1,
# libtorrent's listen and outgoing interfaces, aria2 --interface=::1), so the transfer can
# only have been over IPv6. The tracker must list the seeder in peers6, and Rivulet must log
# its peer as [::1].
ipv6_transfer() {
    local seeder=$1 leecher=$2 TRACKER_HOST='[::1]' LT_LISTEN=::1 RIV_BIND=::1
    export TRACKER_HOST LT_LISTEN
    local ARIA_COMMON=("${ARIA_COMMON[@]/--disable-ipv6=true/--disable-ipv6=false}")
    ARIA_COMMON=("${ARIA_COMMON[@]/--interface=127.0.0.1/--interface=::1}")
    with_rivulet_tracker eval '
        make_torrent single64 mktorrent -l 18 && transfer "$seeder" "$leecher" || return 1
        py peers "$TRACKER_PORT" "$HASH" >"$C/tracker-peers"
        echo "the tracker lists: $(tr "\n" " " <"$C/tracker-peers")"
        grep -q "^::1 " "$C/tracker-peers" || { echo "no ::1 peer in peers6"; return 1; }'
    [ $? -eq 0 ] || return 1
    grep -h -m 1 "peer connected.*addr=\[::1\]" "$C"/rivulet-*.log \
        || { echo "Rivulet logged no peer on ::1"; return 1; }
}
# utp_transfer SEEDER LEECHER : 64 MiB over uTP alone. libtorrent has TCP off both ways
# (enable_outgoing_tcp, enable_incoming_tcp) and uTP on; Rivulet dials uTP only
# (--transport utp). libtorrent's log must show its peer on uTP, and never on TCP.
utp_transfer() {
    local seeder=$1 leecher=$2
    local LT_SETTINGS='{"enable_outgoing_utp": true, "enable_incoming_utp": true, "enable_outgoing_tcp": false, "enable_incoming_tcp": false}'
    export LT_SETTINGS
    local RIV_NET=(--transport utp)
    make_torrent single64 mktorrent -l 18 && transfer "$seeder" "$leecher" || return 1
    local side=leech
    [ "$seeder" = libtorrent ] && side=seed
    grep -m 3 "transport=" "$C/libtorrent-$side.log"
    grep -q "transport=utp" "$C/libtorrent-$side.log" || { echo "libtorrent saw no uTP peer"; return 1; }
    ! grep -q "transport=tcp" "$C/libtorrent-$side.log" || { echo "libtorrent saw a TCP peer"; return 1; }
}
case_libtorrent_seed_rivulet_leech_utp() { utp_transfer libtorrent rivulet; }
case_rivulet_seed_libtorrent_utp() { utp_transfer rivulet libtorrent; }

case_libtorrent_seed_rivulet_leech_ipv6() { ipv6_transfer libtorrent rivulet; }
case_rivulet_seed_libtorrent_ipv6() { ipv6_transfer rivulet libtorrent; }
case_aria2_seed_rivulet_leech_ipv6() { ipv6_transfer aria2 rivulet; }
case_rivulet_seed_aria2_ipv6() { ipv6_transfer rivulet aria2; }

case_dht_with_libtorrent_both_ways() {
    unshare -rn true 2>/dev/null || { echo "no network namespace can be had here"; return 1; }
    timeout "$(remaining)" unshare -rn bash "$ROOT/tests/interop/dht.sh" "$RIV" "$LT" "$C"
}

# rivulet_from SEEDER SEED_PORT LEECH_PORT OUT : SEEDER seeds $C/src, a rivulet downloads into
# OUT (logging to rivulet-leech-SEEDER.log) and the copy is compared; the seeder is stopped
rivulet_from() {
    local seeder=$1 sport=$2 lport=$3 out=$4 seed rc=0
    "seed_$seeder" "$sport" || return 1
    seed=$BG_PID
    py waitpeer "$TRACKER_PORT" "$HASH" "$sport" 60 || return 1
    start_leech_rivulet "$lport" "$out" "-$seeder" || return 1
    wait_pid "$BG_PID" || rc=$?
    echo "rivulet from $seeder exited with $rc after $(( $(date +%s) - CASE_START )) s"
    stop_pid "$seed"
    [ $rc -eq 0 ] && check_result "$out"
}

case_many_files_under_256_descriptors() {
    # 5,000 files of 1 KiB to 1 MiB, every rivulet under `ulimit -n 256`: it downloads them
    # from aria2 and from libtorrent, seeds them to libtorrent, and a recheck with fresh
    # state (no seeder left) finds them all without downloading a byte
    local RIV_LIMITED=(bash -c 'ulimit -n 256 && exec "$@"' ulimit-256)
    local p1 p2 p3 p4 p5 p6 rc
    make_torrent many5000 mktorrent -l 18 || return 1
    read -r p1 p2 p3 p4 p5 p6 < <(py freeports 6)
    mkdir -p "$C/out" "$C/out-lt" "$C/out-seeded"

    rivulet_from aria2 "$p1" "$p2" "$C/out" || return 1
    grep -q 'open-file limit limit=Some(256)' "$C/rivulet-leech-aria2.log" \
        || { echo "rivulet did not run under an open-file limit of 256"; return 1; }
    rivulet_from libtorrent "$p3" "$p4" "$C/out-lt" || return 1

    seed_rivulet "$p5" "$C/out" || return 1
    py waitpeer "$TRACKER_PORT" "$HASH" "$p5" 60 || return 1
    start_leech_libtorrent "$p6" "$C/out-seeded" "" || return 1
    rc=0; wait_pid "$BG_PID" || rc=$?
    grep -E 'finished in|TIMEOUT|STALLED' "$C/libtorrent-leech.log" | tail -n 1
    [ $rc -eq 0 ] && check_result "$C/out-seeded" || return 1
    stop_pid "$RIVULET_SEED_PID"

    # Nobody seeds now: only a recheck that finds every piece can finish.
    read -r p1 < <(py freeports 1)
    timeout 120 "${RIV_LIMITED[@]}" "$RIV" download "$T" -o "$C/out-lt" --port "$p1" \
        --bind 127.0.0.1 --state-dir "$C/state-recheck" >"$C/rivulet-recheck.log" 2>&1
    rc=$?
    echo "rivulet recheck with fresh state exited with $rc after $(( $(date +%s) - CASE_START )) s"
    tail -n 2 "$C/rivulet-recheck.log"
    [ $rc -eq 0 ] || return 1
    if grep -qi 'too many open files' "$C"/rivulet-*.log; then
        echo "a rivulet ran out of descriptors"
        return 1
    fi
}

# files_skipped_transfer SEEDER : Rivulet downloads three files of `multi` from SEEDER with
# `--only` (the numbers `rivulet info` prints); with 32 KiB pieces the files it skips share
# pieces with those it takes. The chosen files must be identical and the others never created.
files_skipped_transfer() {
    local seeder=$1 sport lport rc only f
    local chosen=(b_tiny.bin d_sub/deeper/e_odd.bin z_last.bin) skipped=(c_big.bin d_sub/g_block.bin)
    make_torrent multi mktorrent -l 15 || return 1
    only=$("$RIV" info "$T" | sed -nE 's#^  ([0-9]+): multi/(b_tiny\.bin|d_sub/deeper/e_odd\.bin|z_last\.bin) .*#\1#p' | paste -sd,)
    [ "$(tr ',' '\n' <<<"$only" | grep -c .)" -eq 3 ] || { echo "cannot number the files: '$only'"; return 1; }
    echo "rivulet takes files $only"
    read -r sport lport < <(py freeports 2)
    "seed_$seeder" "$sport" || return 1
    py waitseed "$TRACKER_PORT" "$HASH" "$(( $(remaining) > 60 ? 60 : $(remaining) ))" || return 1
    mkdir -p "$C/out"
    local RIV_NET=(${RIV_NET[@]+"${RIV_NET[@]}"} --only "$only")
    leech_rivulet "$lport"
    rc=$?
    echo "rivulet leecher exited with $rc after $(( $(date +%s) - CASE_START )) s"
    [ $rc -eq 0 ] || return 1
    for f in "${chosen[@]}"; do
        cmp -s "$C/src/$NAME/$f" "$C/out/$NAME/$f" || { echo "$f differs or is missing"; return 1; }
    done
    for f in "${skipped[@]}"; do
        [ ! -e "$C/out/$NAME/$f" ] || { echo "$f was created though skipped"; return 1; }
    done
    echo "the chosen files are identical; the skipped ones were never created"
}
case_libtorrent_seed_rivulet_leech_some_files() { files_skipped_transfer libtorrent; }
case_aria2_seed_rivulet_leech_some_files() { files_skipped_transfer aria2; }

case_rivulet_seed_three_leechers() {
    # one Rivulet seeder, three leechers at once (two libtorrent, one aria2), 64 MiB
    local sport p1 p2 p3 pids=() names=() i rc failed=0
    make_torrent single64 mktorrent -l 18 || return 1
    read -r sport p1 p2 p3 < <(py freeports 4)
    seed_rivulet "$sport" || return 1
    py waitseed "$TRACKER_PORT" "$HASH" 60 || return 1
    echo "rivulet seeder listed by the tracker after $(( $(date +%s) - CASE_START )) s"
    mkdir -p "$C/out-lt1" "$C/out-lt2" "$C/out-aria2"
    # aria2 takes seconds to start: the libtorrent leechers start once it has announced,
    # so that the three download at the same time
    start_leech_aria2 "$p3" "$C/out-aria2" "" || return 1
    pids+=("$BG_PID"); names+=(aria2)
    py scrapewait "$TRACKER_PORT" "$HASH" 20 0.2 'incomplete>=1' >/dev/null
    echo "aria2 leecher announced after $(( $(date +%s) - CASE_START )) s"
    start_leech_libtorrent "$p1" "$C/out-lt1" 1 || return 1
    pids+=("$BG_PID"); names+=(libtorrent-1)
    start_leech_libtorrent "$p2" "$C/out-lt2" 2 || return 1
    pids+=("$BG_PID"); names+=(libtorrent-2)
    for i in 0 1 2; do
        rc=0   # leechers in the order they started: aria2, libtorrent-1, libtorrent-2
        wait_pid "${pids[$i]}" || rc=$?
        echo "${names[$i]} leecher exited with $rc after $(( $(date +%s) - CASE_START )) s"
        [ $rc -eq 0 ] || failed=1
    done
    grep -hE 'finished in|TIMEOUT|STALLED' "$C"/libtorrent-leech*.log
    for i in lt1 lt2 aria2; do
        check_result "$C/out-$i" || failed=1
    done
    [ $failed -eq 0 ]
}

# Seconds for the cases whose limit is not CASE_TIMEOUT's default: those that move more
# data (a debug rivulet binary on two cores; a passing run takes a fraction of this), and
# one that must fail when a stall is only cut short by the leecher's own timeout.
declare -A CASE_TIMEOUTS=(
    [rivulet_seed_libtorrent_64m_256k]=150
    [rivulet_seed_libtorrent_256m_4m]=300
    [rivulet_seed_aria2_64m]=90       # the old seeder stalled aria2 at 99% until its 60 s timeout: 128 s
    [libtorrent_seed_rivulet_leech_64m]=150
    [rivulet_seed_three_leechers]=200
    [rivulet_seed_transmission_64m]=240
    [many_files_under_256_descriptors]=600
)

CASES=(
    harness_aria2_to_aria2
    aria2_seed_rivulet_leech_single
    aria2_seed_rivulet_leech_multi
    transmission_seed_rivulet_leech_single
    transmission_seed_rivulet_leech_multi
    rivulet_seed_aria2_leech_single
    rivulet_seed_aria2_leech_multi
    rivulet_info
    rivulet_create_single_aria2
    rivulet_create_multi_aria2
    rivulet_create_single_transmission
    rivulet_create_multi_transmission
    rivulet_udp_tracker
    rivulet_scrape_opentracker
    rivulet_tracker_aria2_to_aria2
    rivulet_tracker_transmission_to_aria2
    rivulet_tracker_rivulet_to_transmission
    rivulet_tracker_udp
    rivulet_tracker_stopped_and_scrape
    harness_libtorrent_to_libtorrent
    rivulet_seed_libtorrent_64m_256k
    rivulet_seed_libtorrent_256m_4m
    rivulet_seed_libtorrent_multi_64k
    rivulet_seed_libtorrent_16k
    rivulet_seed_libtorrent_lt_torrent
    rivulet_seed_aria2_64m
    libtorrent_seed_rivulet_leech_64m
    libtorrent_seed_rivulet_leech_multi
    rivulet_seed_three_leechers
    libtorrent_seed_rivulet_leech_hybrid
    aria2_seed_rivulet_leech_padded
    rivulet_seed_libtorrent_hybrid
    many_files_under_256_descriptors
    rivulet_seed_transmission_64m
    rivulet_seed_libtorrent_magnet
    rivulet_seed_aria2_magnet
    libtorrent_seed_rivulet_magnet
    aria2_seed_rivulet_magnet
    rivulet_seed_rivulet_magnet
    dht_with_libtorrent_both_ways
    libtorrent_seed_rivulet_leech_rc4
    rivulet_seed_libtorrent_rc4
    libtorrent_seed_rivulet_leech_obfuscated
    rivulet_seed_libtorrent_obfuscated
    libtorrent_seed_rivulet_leech_ipv6
    rivulet_seed_libtorrent_ipv6
    aria2_seed_rivulet_leech_ipv6
    rivulet_seed_aria2_ipv6
    libtorrent_seed_rivulet_leech_utp
    rivulet_seed_libtorrent_utp
    libtorrent_seed_rivulet_leech_some_files
    aria2_seed_rivulet_leech_some_files
)

PASSED=0
FAILED=0
FAILED_NAMES=()

show_logs() {
    local f
    echo "----- $1: case output -----"
    tail -n 30 "$C/case.out"
    for f in "$C"/*.log; do
        [ -s "$f" ] || continue
        echo "----- $1: tail of $(basename "$f") -----"
        tr '\r' '\n' <"$f" | sed 's/\x1b\[[0-9;]*m//g' | grep -v '^ *$' | tail -n 40
    done
    echo "----- end of $1 -----"
}

# run_case NAME : case_NAME, or NAME's row of TRANSFER_CASES
run_case() {
    local -a row
    if [ -n "${TRANSFER_CASES[$1]:-}" ]; then
        read -ra row <<<"${TRANSFER_CASES[$1]}"
        transfer_case "${row[@]}"
    else
        "case_$1"
    fi
}

for name in "${CASES[@]}"; do
    if [ -n "$INTEROP_CASES" ] && ! [[ $name =~ $INTEROP_CASES ]]; then
        continue
    fi
    C="$WORK/cases/$name"
    T="$C/case.torrent"
    mkdir -p "$C"
    CASE_PIDS=()
    CASE_START=$(date +%s)
    limit=${CASE_TIMEOUTS[$name]:-$CASE_TIMEOUT}
    [ -z "$CASE_TIMEOUT_GIVEN" ] || [ "$limit" -ge "$CASE_TIMEOUT" ] || limit=$CASE_TIMEOUT
    DEADLINE=$((CASE_START + limit))
    HASH=""
    NAME=""
    if [[ $name != harness_* ]] && [ "$RIVULET_OK" != 1 ]; then
        echo "no rivulet binary (build failed or RIVULET_BIN wrong)" >"$C/case.out"
        rc=1
    else
        run_case "$name" >"$C/case.out" 2>&1
        rc=$?
    fi
    for pid in "${CASE_PIDS[@]}"; do stop_pid "$pid"; done
    CASE_PIDS=()
    log "$name took $(( $(date +%s) - CASE_START )) s (limit $limit s)"
    if [ $rc -eq 0 ]; then
        echo "PASS $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL $name"
        FAILED=$((FAILED + 1))
        FAILED_NAMES+=("$name")
        show_logs "$name"
    fi
    # the data of a finished case is no longer needed
    [ "${INTEROP_KEEP:-0}" = 1 ] || rm -rf "$C/src" "$C"/out*
done

echo "$PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]
