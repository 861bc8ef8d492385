#!/usr/bin/env bash
# Issue 18's five performance goals, measured side by side with the reference clients in one
# run, each by its own bench (read its header for what it measures and how):
#   1. download   benches/loopback.sh           1 GiB from a libtorrent seeder: Rivulet's
#                                               transfer time against libtorrent as leecher,
#                                               its CPU against aria2's, its peak RSS
#   2. upload     benches/seed_vs_libtorrent.sh libtorrent downloading 1 GiB from a Rivulet
#                                               seeder against from a libtorrent seeder
#   3. swarm      benches/swarm.sh              1 seeder and 16 leechers of 256 MiB against
#                                               one leecher alone
#   4. recheck    benches/recheck.rs            1 GiB in the page cache, as one file and as
#                                               10,000 files
#   5. many       benches/app_idle.sh           the desktop app with 1,000 torrents under
#                                               Xvfb: idle CPU, RSS, start-up
# Each bench's full output is printed as it runs; at the end, the goals with their figures
# and PASS / FAIL. Takes about 15 minutes on two cores.
#
#   bash benches/goals.sh
#
# Needs what the benches need: python3-libtorrent, aria2, opentracker (as .ci/run installs
# them for the interop suite), Xvfb and xdotool. Builds the release binary first unless
# RIVULET_BIN is set. Everything stays on loopback.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -z "${RIVULET_BIN:-}" ]; then
    cargo build --release --locked || exit 1
    RIVULET_BIN=$PWD/target/release/rivulet
fi
export RIVULET_BIN
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

step() {
    local goal=$1
    shift
    echo
    echo "=================== goal $goal: $*"
    "$@" 2>&1 | tee -a "$LOG"
    [ "${PIPESTATUS[0]}" = 0 ] || echo "goal $goal: the bench failed (status ${PIPESTATUS[0]})" | tee -a "$LOG"
}

step 1 bash benches/loopback.sh
step 2 env BENCH_TARGET=0.8 bash benches/seed_vs_libtorrent.sh
step 3 bash benches/swarm.sh
step 4 cargo bench --locked --bench recheck
step 5 bash benches/app_idle.sh

echo
echo "=================== the goals"
grep -E '^goal [0-9]|^ratio rivulet/libtorrent of median|^swarm of|^one file +median|^small files +median|^idle CPU|^RSS|^start-up' "$LOG"
