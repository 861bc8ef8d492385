#!/usr/bin/env bash
# The desktop app with 1,000 torrents (issue 18's goal 5): idle CPU, memory and start-up,
# measured on the real window under Xvfb.
#
#   cargo build --release && bash benches/app_idle.sh
#
# 1,000 tiny single-file torrents (about 20 KB each) whose tracker is down
# (http://127.0.0.1:9/announce), their data in place, so each one checks and seeds. The app
# runs with a temporary HOME whose settings bind it to 127.0.0.1 with the DHT, LSD, port
# mapping and the queue off (every torrent active: the hardest idle case). Steps:
#   1. the app opened with the 1,000 .torrent files (added at once, no dialog); after 40 s,
#      its CPU (user+sys, all threads, from /proc) over 30 s, and its memory;
#   2. the app closed and started again (fast resume, no recheck): the time to its window
#      and to the last of the 1,000 torrents started (its log), then idle CPU over 30 s.
# Memory is given twice: RSS (VmRSS), and the app's own memory (anonymous pages). Under Xvfb
# the window is drawn by Mesa's software renderer, whose LLVM library's pages count in RSS;
# their share is printed too.
# Targets: idle CPU < 1% of a core, RSS <= 100 MiB, start-up <= 2 s.
#
# Needs Xvfb and xdotool. Everything stays on loopback. Environment: RIVULET_BIN (default
# target/release/rivulet), APP_IDLE_TORRENTS (default 1000).
set -euo pipefail

BIN=${RIVULET_BIN:-target/release/rivulet}
BIN=$(realpath "$BIN")
COUNT=${APP_IDLE_TORRENTS:-1000}
W=$(mktemp -d)
DISPLAY_NUM=:$((90 + RANDOM % 9))
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT

mkdir -p "$W"/{dl,torrents,home/.config/rivulet,xdg}
chmod 700 "$W/xdg"
python3 - "$W/dl" "$COUNT" <<'PY'
import random, sys
out, count = sys.argv[1], int(sys.argv[2])
r = random.Random(3)
for i in range(count):
    with open(f'{out}/file-{i:04d}.bin', 'wb') as f:
        f.write(r.randbytes(20_000 + i))
PY
echo "making $COUNT torrents..."
n=0
for f in "$W"/dl/*.bin; do
  "$BIN" create "$f" -o "$W/torrents/$(basename "$f" .bin).torrent" \
    --tracker http://127.0.0.1:9/announce --piece-length 16384 > /dev/null &
  n=$((n + 1))
  if (( n % 50 == 0 )); then wait; fi
done
wait
cat > "$W/home/.config/rivulet/settings.json" <<JSON
{"download_dir": "$W/dl", "ask_before_adding": false, "network_interface": "127.0.0.1",
 "port_mapping": false, "dht_enabled": false, "lsd_enabled": false, "close_to_tray": false,
 "transport": "tcp_only", "queue_enabled": false, "notify_on_complete": false}
JSON

Xvfb "$DISPLAY_NUM" -screen 0 1100x700x24 > /dev/null 2>&1 &
sleep 1

app() {
  env -u WAYLAND_DISPLAY HOME="$W/home" DISPLAY="$DISPLAY_NUM" XDG_RUNTIME_DIR="$W/xdg" \
    RUST_LOG=info,winit=error "$BIN" "$@" > "$W/app.log" 2>&1 &
  PID=$!
}

# the log's "started" lines (colours taken out)
started_lines() { sed 's/\x1b\[[0-9;]*m//g' "$W/app.log" | grep "transitions: started" || true; }

ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

# idle CPU over 30 s, as a percentage of one core
idle_cpu() {
  local t0 t1 s0 s1
  t0=$(ticks); s0=$(date +%s.%N)
  sleep 30
  t1=$(ticks); s1=$(date +%s.%N)
  echo "scale=2; 100 * ($t1 - $t0) / $(getconf CLK_TCK) / ($s1 - $s0)" | bc
}

memory() {
  local rss anon llvm
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
  anon=$(awk '/^Anonymous/ {print $2}' "/proc/$PID/smaps_rollup")
  llvm=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6} /^Rss:/ && name ~ /libLLVM|dri/ {s += $2} END {print s + 0}' "/proc/$PID/smaps")
  printf 'RSS %.1f MiB (of which Mesa LLVM and DRI pages %.1f MiB); own memory (anonymous) %.1f MiB\n' \
    "$(echo "$rss / 1024" | bc -l)" "$(echo "$llvm / 1024" | bc -l)" "$(echo "$anon / 1024" | bc -l)"
  echo "$rss"
}

echo "1. adding $COUNT torrents"
app "$W"/torrents/*.torrent
sleep 40
started=$(started_lines | wc -l)
echo "   started torrents: $started"
cpu1=$(idle_cpu)
echo "   idle CPU: $cpu1 % of a core"
mem=$(memory)
echo "   $(echo "$mem" | head -1)"
rss1=$(echo "$mem" | tail -1)
kill "$PID"; wait "$PID" 2>/dev/null || true

echo "2. started again"
start=$(date +%s.%N)
app
window=""
for _ in $(seq 1 500); do
  if DISPLAY="$DISPLAY_NUM" xdotool search --name '^Rivulet$' > /dev/null 2>&1; then
    window=$(echo "$(date +%s.%N) - $start" | bc); break
  fi
  sleep 0.01
done
sleep 40
last=$(started_lines | tail -1 | awk '{print $1}')
ready=$(echo "$(date -d "$last" +%s.%N) - $start" | bc)
echo "   window after ${window:-never} s; all $(started_lines | wc -l) torrents started after $ready s"
cpu2=$(idle_cpu)
echo "   idle CPU: $cpu2 % of a core"
mem=$(memory)
echo "   $(echo "$mem" | head -1)"
kill "$PID"; wait "$PID" 2>/dev/null || true

verdict() { if [ "$(echo "$1" | bc)" = 1 ]; then echo PASS; else echo FAIL; fi; }
echo
echo "idle CPU $cpu1 % / $cpu2 % after a restart, target < 1 %: $(verdict "$cpu1 < 1 && $cpu2 < 1")"
echo "RSS $(echo "scale=1; $rss1 / 1024" | bc) MiB, target <= 100 MiB: $(verdict "$rss1 <= 102400")"
echo "start-up to every torrent started $ready s, target <= 2 s: $(verdict "$ready <= 2")"
