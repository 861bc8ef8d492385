# Shell helpers shared by tests/interop/run.sh and the benchmarks in benches/: processes with
# a bounded lifetime that are ended by their own PID, the clean-up at exit, and installing
# missing Debian packages.
# Source it after defining `log` and `die`. Every process is started through `timeout`, and
# its PID (the timeout process, which relays TERM to its child) goes to ALL_PIDS and
# CASE_PIDS; `stop_all_pids` ends exactly those.

ALL_PIDS=()
CASE_PIDS=()

# stop_pid PID : TERM, up to 5 s of grace, then KILL (the timeout process and its child).
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

stop_all_pids() {
    local pid
    for pid in "${ALL_PIDS[@]}"; do stop_pid "$pid"; done
}

# cleanup_work KEEP : for the EXIT trap. Ends every process started by bg, then deletes the
# work directory $WORK (if there is one yet), or keeps it and says where when KEEP is 1.
cleanup_work() {
    stop_all_pids
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$1" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    fi
}

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

# install_missing PACKAGE... : apt-get install the packages named (none: nothing to do).
install_missing() {
    [ $# -gt 0 ] || return 0
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    log "installing: $*"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 $sudo apt-get update -q >/dev/null || die "apt-get update failed"
    timeout 900 $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null \
        || die "apt-get install $* failed"
}
