#!/usr/bin/env bash
# A against B: 1 GiB over loopback, Rivulet seeding to Rivulet through Rivulet's tracker,
# 1 MiB pieces, both sides run with A's options, then both with B's, alternating, 3 runs each;
# prints the download's wall time and the CPU of both sides. Run from the repository root
# after `cargo build --release` (or set RIV):
#   benches/loopback_ab.sh LABEL_A "OPTIONS A" LABEL_B "OPTIONS B"
# benches/encryption.sh and benches/utp.sh are the two comparisons of the closing notes.
set -eu
RIV=${RIV:-$PWD/target/release/rivulet}
W=${WORK:-/tmp/rivulet-ab-bench}
declare -A OPTIONS=([$1]="$2" [$3]="$4")
rm -rf $W && mkdir -p $W/src
head -c $((1024*1024*1024)) /dev/urandom > $W/src/big.bin
$RIV tracker --port 7399 --open --bind 127.0.0.1 > $W/tracker.log 2>&1 & tr=$!
sleep 0.5
$RIV create $W/src/big.bin -o $W/big.torrent --tracker http://127.0.0.1:7399/announce --piece-length 1048576 > /dev/null
cat $W/src/big.bin > /dev/null
for round in 1 2 3; do
  for label in "$1" "$3"; do
    read -ra opts <<<"${OPTIONS[$label]}"
    rm -rf $W/out $W/ls $W/ss; mkdir -p $W/out
    $RIV seed $W/big.torrent $W/src --bind 127.0.0.1 --port 7400 --state-dir $W/ss --no-dht --no-lsd "${opts[@]}" > $W/seed.log 2>&1 & sd=$!
    sleep 2
    /usr/bin/time -f "%e %U %S" -o $W/leech.time $RIV download $W/big.torrent -o $W/out --bind 127.0.0.1 --port 7401 --state-dir $W/ls --no-dht --no-lsd "${opts[@]}" > $W/leech.log 2>&1
    spid=$(pgrep -f "^$RIV seed .*--port 7400")
    scpu=$(awk '{printf "%.2f", ($14 + $15) / 100}' /proc/$spid/stat)
    kill -INT $spid; wait $sd || true
    read lw lu ls < $W/leech.time
    echo "$label round $round: download ${lw} s wall, leecher CPU $(echo "$lu + $ls" | bc) s, seeder CPU $scpu s"
  done
done
kill $tr
rm -rf $W
