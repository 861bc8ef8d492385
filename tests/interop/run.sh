#!/usr/bin/env bash
# Rivulet interop suite: Rivulet against real BitTorrent software on loopback.
#
#   bash tests/interop/run.sh
#
# Installs (if missing) opentracker, mktorrent, aria2 and transmission-cli, builds
# rivulet (debug) unless RIVULET_BIN points at a binary, starts one opentracker on
# 127.0.0.1 and runs each case with its own random data and torrent (so its own info
# hash: stale peers of an earlier case never show up in a later one).
#
# Prints `PASS name` / `FAIL name` per case and `N passed, M failed` at the end;
# exits non-zero if any case failed.
#
# Environment:
#   RIVULET_BIN       use this rivulet binary instead of building one
#   INTEROP_CASES     extended regex: run only the cases whose name matches
#   INTEROP_KEEP=1    keep the work directory (data, torrents, logs) afterwards
#   CASE_TIMEOUT      seconds one case may take (default 120)
#
# Everything listens on and talks to 127.0.0.1 only; DHT, LPD, PEX, UPnP are off.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CASE_TIMEOUT=${CASE_TIMEOUT:-120}
INTEROP_CASES=${INTEROP_CASES:-}

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'interop: %s\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------- processes
# Every process is started through `timeout`, and we remember its PID (the
# timeout process; timeout relays TERM to its child). Cleanup ends exactly those.
ALL_PIDS=()
CASE_PIDS=()
WORK=""
OT_PID=""

stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            pkill -KILL -P "$pid" 2>/dev/null   # the child of this timeout process
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local pid
    for pid in "${ALL_PIDS[@]}"; do stop_pid "$pid"; done
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${INTEROP_KEEP:-0}" = 1 ]; then
            log "work directory kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# bg SECONDS LOGFILE CMD... : start CMD in the background with a bounded lifetime.
# Sets BG_PID.
bg() {
    local secs=$1 logf=$2
    shift 2
    timeout -k 5 "$secs" "$@" >"$logf" 2>&1 </dev/null &
    BG_PID=$!
    ALL_PIDS+=("$BG_PID")
    CASE_PIDS+=("$BG_PID")
}

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
{ command -v pgrep >/dev/null && command -v pkill >/dev/null; } || need_install+=(procps)
if [ ${#need_install[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    log "installing: ${need_install[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 $SUDO apt-get update -q >/dev/null || die "apt-get update failed"
    timeout 900 $SUDO apt-get install -y -q --no-install-recommends "${need_install[@]}" >/dev/null \
        || die "apt-get install ${need_install[*]} failed"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rivulet-interop.XXXXXX") || die "mktemp failed"
# opentracker drops root to nobody and must still read the whitelist in here.
chmod 755 "$WORK"
H="$WORK/helper.py"

cat >"$H" <<'PY'
import os, sys, socket, hashlib, time, filecmp, json, urllib.request, urllib.parse

def bdecode(b, i=0):
    c = b[i:i+1]
    if c == b'i':
        j = b.index(b'e', i)
        return int(b[i+1:j]), j + 1
    if c == b'l':
        i += 1; out = []
        while b[i:i+1] != b'e':
            v, i = bdecode(b, i); out.append(v)
        return out, i + 1
    if c == b'd':
        i += 1; out = {}
        while b[i:i+1] != b'e':
            k, i = bdecode(b, i); v, i = bdecode(b, i); out[k] = v
        return out, i + 1
    if c.isdigit():
        j = b.index(b':', i); n = int(b[i:j])
        return b[j+1:j+1+n], j + 1 + n
    raise ValueError('bad bencode at offset %d' % i)

def raw_info(path):
    b = open(path, 'rb').read()
    if b[:1] != b'd':
        raise ValueError('not a bencoded dict')
    i = 1
    while b[i:i+1] != b'e':
        k, i = bdecode(b, i)
        start = i
        _, i = bdecode(b, i)
        if k == b'info':
            return b[start:i]
    raise ValueError('no info dict')

def q(h):
    return urllib.parse.quote_from_bytes(bytes.fromhex(h))

def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return bdecode(r.read())[0]

def announce(port, h, event):
    # a probe peer on port 9; always followed by event=stopped so it leaves no trace
    return get('http://127.0.0.1:%d/announce?info_hash=%s&peer_id=-PROBE-0000000000000'
               '&port=9&uploaded=0&downloaded=0&left=0&compact=1&event=%s' % (port, q(h), event))

def scrape(port, h):
    d = get('http://127.0.0.1:%d/scrape?info_hash=%s' % (port, q(h)))
    f = d.get(b'files', {}).get(bytes.fromhex(h)) or {}
    return f.get(b'complete', 0), f.get(b'incomplete', 0)

def mkdata(kind, parent):
    os.makedirs(parent, exist_ok=True)
    def put(rel, size):
        p = os.path.join(parent, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            left = size
            while left:
                n = min(left, 1 << 20)
                f.write(os.urandom(n)); left -= n
    if kind == 'single':
        # 3 MiB + 12345: not a multiple of any power-of-two piece length
        put('single.bin', 3 * 1048576 + 12345)
    elif kind == 'multi':
        put('multi/a_empty.txt', 0)            # zero-length, first
        put('multi/b_tiny.bin', 1000)           # smaller than a block
        put('multi/c_big.bin', 2 * 1048576 + 777)  # spans many pieces
        put('multi/d_sub/deeper/e_odd.bin', 100003)
        put('multi/d_sub/f_empty', 0)           # zero-length in the middle
        put('multi/d_sub/g_block.bin', 16383)   # just under 16 KiB
        put('multi/z_last.bin', 54321)
    else:
        sys.exit('unknown data kind ' + kind)

def compare(src, dst):
    """every file under src equal under dst, no extra files under dst"""
    bad = []
    if os.path.isfile(src):
        if not os.path.isfile(dst):
            return ['missing %s' % dst]
        return [] if filecmp.cmp(src, dst, shallow=False) else ['differs: %s' % dst]
    if not os.path.isdir(dst):
        return ['missing directory %s' % dst]
    def files(root):
        out = set()
        for d, _, fs in os.walk(root):
            for f in fs:
                out.add(os.path.relpath(os.path.join(d, f), root))
        return out
    s, d = files(src), files(dst)
    for rel in sorted(s - d):
        bad.append('missing: %s' % rel)
    for rel in sorted(d - s):
        bad.append('extra: %s' % rel)
    for rel in sorted(s & d):
        if not filecmp.cmp(os.path.join(src, rel), os.path.join(dst, rel), shallow=False):
            bad.append('differs: %s (size %d vs %d)' % (rel, os.path.getsize(os.path.join(src, rel)),
                                                       os.path.getsize(os.path.join(dst, rel))))
    return bad

def tsettings(confdir, port):
    os.makedirs(confdir, exist_ok=True)
    s = {"bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
         "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
         "port-forwarding-enabled": False, "encryption": 0, "peer-port": port,
         "peer-port-random-on-start": False, "download-queue-enabled": False,
         "seed-queue-enabled": False, "queue-stalled-enabled": False,
         "speed-limit-down-enabled": False, "speed-limit-up-enabled": False,
         "alt-speed-enabled": False, "ratio-limit-enabled": False,
         "idle-seeding-limit-enabled": False, "rpc-enabled": False, "blocklist-enabled": False,
         "start-added-torrents": True, "incomplete-dir-enabled": False,
         "watch-dir-enabled": False, "message-level": 2}
    with open(os.path.join(confdir, 'settings.json'), 'w') as f:
        json.dump(s, f, indent=1)

cmd, a = sys.argv[1], sys.argv[2:]
if cmd == 'freeports':
    socks = []
    for _ in range(int(a[0])):
        s = socket.socket(); s.bind(('127.0.0.1', 0)); socks.append(s)
    print(' '.join(str(s.getsockname()[1]) for s in socks))
    for s in socks: s.close()
elif cmd == 'infohash':
    print(hashlib.sha1(raw_info(a[0])).hexdigest())
elif cmd == 'name':
    print(bdecode(raw_info(a[0]))[0][b'name'].decode())
elif cmd == 'private':
    print(bdecode(raw_info(a[0]))[0].get(b'private', 0))
elif cmd == 'wlwait':
    # wait until the tracker accepts announces for every hash (whitelist reloaded)
    port, deadline = int(a[0]), time.time() + float(a[1])
    for h in a[2:]:
        while True:
            try:
                d = announce(port, h, 'started')
                if b'failure reason' not in d:
                    announce(port, h, 'stopped')
                    break
            except Exception as e:
                d = repr(e)
            if time.time() > deadline:
                sys.exit('tracker does not accept %s: %r' % (h, d))
            time.sleep(0.2)
elif cmd == 'waitseed':
    # wait until the tracker lists at least one seeder for the hash
    port, h, deadline = int(a[0]), a[1], time.time() + float(a[2])
    last = None
    while True:
        try:
            c, i = scrape(port, h)
            if c >= 1:
                break
            last = 'complete=%d incomplete=%d' % (c, i)
        except Exception as e:
            last = repr(e)
        if time.time() > deadline:
            sys.exit('tracker lists no seeder for %s (%s)' % (h, last))
        time.sleep(0.3)
elif cmd == 'scrape_counts':
    print('%d %d' % scrape(int(a[0]), a[1]))
elif cmd == 'mkdata':
    mkdata(a[0], a[1])
elif cmd == 'compare':
    bad = compare(a[0], a[1])
    for b in bad[:20]:
        print(b)
    sys.exit(1 if bad else 0)
elif cmd == 'tsettings':
    tsettings(a[0], int(a[1]))
else:
    sys.exit('unknown helper command ' + cmd)
PY

py() { python3 "$H" "$@"; }

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

seed_rivulet() {
    local port=$1
    mkdir -p "$C/state-seed"
    bg "$(remaining)" "$C/rivulet-seed.log" "$RIV" seed "$T" "$C/src" --port "$port" \
        --bind 127.0.0.1 --state-dir "$C/state-seed"
    RIVULET_SEED_PID=$BG_PID
}

leech_aria2() {
    local port=$1
    bg "$(remaining)" "$C/aria2-leech.log" aria2c "${ARIA_COMMON[@]}" --seed-time=0 \
        --listen-port="$port" --dir="$C/out" "$T"
    wait_pid "$BG_PID"
}

leech_rivulet() {
    local port=$1
    mkdir -p "$C/state-leech"
    bg "$(remaining)" "$C/rivulet-leech.log" "$RIV" download "$T" -o "$C/out" --port "$port" \
        --bind 127.0.0.1 --state-dir "$C/state-leech"
    wait_pid "$BG_PID"
}

# make_torrent KIND TOOL [extra args...] : data into $C/src, torrent into $T, whitelisted
make_torrent() {
    local kind=$1 tool=$2
    shift 2
    py mkdata "$kind" "$C/src" || return 1
    NAME=$([ "$kind" = single ] && echo single.bin || echo multi)
    case "$tool" in
        mktorrent)
            timeout 60 mktorrent -d -a "$ANNOUNCE" "$@" -o "$T" "$C/src/$NAME" >"$C/mktorrent.log" 2>&1 \
                || { echo "mktorrent failed"; return 1; } ;;
        rivulet)
            timeout 60 "$RIV" create "$C/src/$NAME" -o "$T" --tracker "$ANNOUNCE" "$@" \
                >"$C/rivulet-create.log" 2>&1 || { echo "rivulet create failed"; return 1; }
            [ -s "$T" ] || { echo "rivulet create wrote no torrent"; return 1; } ;;
    esac
    HASH=$(py infohash "$T") || { echo "cannot read the info hash of $T"; return 1; }
    echo "info hash $HASH"
    whitelist_add "$HASH"
}

check_result() {
    local diffs
    if diffs=$(py compare "$C/src/$NAME" "$C/out/$NAME"); then
        echo "content identical"
        return 0
    fi
    echo "content differs:"
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

# ---------------------------------------------------------------- cases
case_harness_aria2_to_aria2() {       # checks the harness itself, no Rivulet involved
    make_torrent multi mktorrent -l 15 && transfer aria2 aria2
}
case_aria2_seed_rivulet_leech_single() {
    make_torrent single mktorrent -l 15 && transfer aria2 rivulet
}
case_aria2_seed_rivulet_leech_multi() {
    make_torrent multi mktorrent -l 16 && transfer aria2 rivulet
}
case_transmission_seed_rivulet_leech_single() {
    make_torrent single mktorrent -l 16 && transfer transmission rivulet
}
case_transmission_seed_rivulet_leech_multi() {
    make_torrent multi mktorrent -l 15 && transfer transmission rivulet
}
case_rivulet_seed_aria2_leech_single() {
    make_torrent single mktorrent && transfer rivulet aria2     # mktorrent's default 256 KiB pieces
}
case_rivulet_seed_aria2_leech_multi() {
    make_torrent multi mktorrent -l 15 && transfer rivulet aria2
}
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
case_rivulet_create_single_aria2() {
    make_torrent single rivulet && transfer rivulet aria2
}
case_rivulet_create_multi_aria2() {
    make_torrent multi rivulet --piece-length 32768 && transfer rivulet aria2
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

case_rivulet_udp_tracker() {         # seeder and leecher both announce over UDP (BEP 15)
    local ANNOUNCE="udp://127.0.0.1:$TRACKER_PORT/announce"
    make_torrent single rivulet && transfer rivulet rivulet
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
# pointing at a fresh `rivulet tracker` (open, 5 s interval) instead of opentracker.
with_rivulet_tracker() {
    local TRACKER_PORT ANNOUNCE
    read -r TRACKER_PORT < <(py freeports 1)
    ANNOUNCE="http://127.0.0.1:$TRACKER_PORT/announce"
    bg "$(remaining)" "$C/rivulet-tracker.log" "$RIV" tracker --port "$TRACKER_PORT" \
        --bind 127.0.0.1 --open --interval 5
    py wlwait "$TRACKER_PORT" 15 0000000000000000000000000000000000000000 \
        || { echo "rivulet tracker did not come up"; return 1; }
    echo "rivulet tracker on 127.0.0.1:$TRACKER_PORT"
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

case_rivulet_tracker_aria2_to_aria2() {
    with_rivulet_tracker eval 'make_torrent multi mktorrent -l 15 && transfer aria2 aria2'
}
case_rivulet_tracker_transmission_to_aria2() {
    with_rivulet_tracker eval 'make_torrent single mktorrent -l 16 && transfer transmission aria2'
}
case_rivulet_tracker_rivulet_to_transmission() {
    # transmission ignores loopback peers from trackers: Rivulet learns of it on a re-announce
    # (the tracker's 5 s interval, clamped to Rivulet's 15 s floor) and dials it
    with_rivulet_tracker eval 'make_torrent single rivulet --piece-length 65536 && transfer rivulet transmission'
}
case_rivulet_tracker_udp() {          # Rivulet's UDP client against Rivulet's tracker
    with_rivulet_tracker eval 'ANNOUNCE="udp://127.0.0.1:$TRACKER_PORT/announce"; make_torrent multi rivulet && transfer rivulet rivulet'
}
case_rivulet_tracker_stopped_and_scrape() {
    # an aria2 leecher and a Rivulet seeder; scrape counts follow the swarm, and a seeder
    # that stops (SIGTERM: Rivulet announces `stopped`) leaves it at once
    with_rivulet_tracker eval '
        make_torrent single rivulet && transfer rivulet aria2 || return 1
        read -r c i < <(python3 "$H" scrape_counts "$TRACKER_PORT" "$HASH")
        echo "scrape after the download: complete=$c incomplete=$i"
        [ "$c" -ge 1 ] || { echo "the seeder is not counted"; return 1; }
        stop_pid "$RIVULET_SEED_PID"
        for k in $(seq 20); do
            read -r c i < <(python3 "$H" scrape_counts "$TRACKER_PORT" "$HASH")
            [ "$c" -eq 0 ] && break
            sleep 0.5
        done
        echo "scrape after the seeder stopped: complete=$c incomplete=$i"
        [ "$c" -eq 0 ]'
}

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

for name in "${CASES[@]}"; do
    if [ -n "$INTEROP_CASES" ] && ! [[ $name =~ $INTEROP_CASES ]]; then
        continue
    fi
    C="$WORK/cases/$name"
    T="$C/case.torrent"
    mkdir -p "$C"
    CASE_PIDS=()
    CASE_START=$(date +%s)
    DEADLINE=$((CASE_START + CASE_TIMEOUT))
    HASH=""
    NAME=""
    if [ "$name" != harness_aria2_to_aria2 ] && [ "$RIVULET_OK" != 1 ]; then
        echo "no rivulet binary (build failed or RIVULET_BIN wrong)" >"$C/case.out"
        rc=1
    else
        "case_$name" >"$C/case.out" 2>&1
        rc=$?
    fi
    for pid in "${CASE_PIDS[@]}"; do stop_pid "$pid"; done
    CASE_PIDS=()
    log "$name took $(( $(date +%s) - CASE_START )) s"
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
    [ "${INTEROP_KEEP:-0}" = 1 ] || rm -rf "$C/src" "$C/out"
done

echo "$PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]
