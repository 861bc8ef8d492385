#!/usr/bin/env bash
# The DHT (BEP 5) between Rivulet and libtorrent, both ways. Runs inside a network namespace
# that has only lo (run.sh starts it under `unshare -rn`), so no datagram can reach a public
# node; every node listens on 127.0.0.1. A Rivulet node is the only router.
#
#   dht.sh RIVULET LTDRIVE DIR
#
# 1. libtorrent seeds a trackerless torrent, bootstrapping from a Rivulet node (a `rivulet
#    download` of the same torrent, which has nothing to give); a second Rivulet, told only
#    that node, finds the libtorrent seeder through the DHT and downloads.
# 2. Rivulet seeds a trackerless torrent, bootstrapping from a Rivulet node; a libtorrent
#    leecher, told only that node, finds the Rivulet seeder through the DHT and downloads.
# Exits 0 when both downloads verify.
set -u
RIV=$1 LT=$2 DIR=$3
ip link set lo up || { echo "cannot bring lo up in the namespace"; exit 1; }
cd "$DIR" || exit 1
export RUST_LOG=${RUST_LOG:-rivulet=debug}
LT_DHT='{"enable_dht": true, "dht_bootstrap_nodes": "127.0.0.1:7000", "dht_restrict_routing_ips": false, "dht_restrict_search_ips": false, "dht_enforce_node_id": false, "dht_prefer_verified_node_ids": false}'
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait' EXIT

# make NAME : a 3 MB file and its trackerless torrent NAME.torrent
make() {
    mkdir -p "src-$1"
    head -c 3000000 /dev/urandom >"src-$1/$1.bin"
    "$RIV" create "src-$1/$1.bin" -o "$1.torrent" --piece-length 65536 >"create-$1.log" 2>&1 \
        || { echo "rivulet create failed"; exit 1; }
}

# 1. a libtorrent seeder, found by Rivulet
make one
timeout 90 "$RIV" download one.torrent -o router-one --bind 127.0.0.1 --port 7000 \
    --state-dir state-router-one >rivulet-router-one.log 2>&1 &
PIDS+=($!)
sleep 1
LT_SETTINGS=$LT_DHT timeout 90 /usr/bin/python3 -u "$LT" seed one.torrent src-one 7001 \
    >libtorrent-seed-one.log 2>&1 &
PIDS+=($!)
sleep 5    # libtorrent bootstraps and announces to the router
if timeout 40 "$RIV" download one.torrent -o out-one --bind 127.0.0.1 --port 7002 \
    --state-dir state-one --dht-bootstrap 127.0.0.1:7000 >rivulet-leech-one.log 2>&1 \
    && cmp -s src-one/one.bin out-one/one.bin; then
    echo "1. Rivulet found the libtorrent seeder through the DHT and downloaded (verified)"
else
    echo "1. FAILED: Rivulet did not download from the libtorrent seeder"
    tail -n 20 rivulet-leech-one.log
    exit 1
fi
grep -q "peer connected.*addr=127.0.0.1:7001" rivulet-leech-one.log \
    || { echo "1. FAILED: the leecher never connected to the libtorrent seeder"; exit 1; }

# 2. a Rivulet seeder, found by libtorrent
make two
timeout 90 "$RIV" download two.torrent -o router-two --bind 127.0.0.1 --port 7000 \
    --state-dir state-router-two >rivulet-router-two.log 2>&1 &
PIDS+=($!)
sleep 1
timeout 90 "$RIV" seed two.torrent src-two --bind 127.0.0.1 --port 7011 \
    --state-dir state-seed-two --dht-bootstrap 127.0.0.1:7000 >rivulet-seed-two.log 2>&1 &
PIDS+=($!)
sleep 3    # the seeder checks its data and announces to the router
mkdir -p out-two
if LT_SETTINGS=$LT_DHT timeout 40 /usr/bin/python3 -u "$LT" leech two.torrent out-two 7012 35 \
    >libtorrent-leech-two.log 2>&1 && cmp -s src-two/two.bin out-two/two.bin; then
    echo "2. libtorrent found the Rivulet seeder through the DHT and downloaded (verified)"
else
    echo "2. FAILED: libtorrent did not download from the Rivulet seeder"
    tail -n 20 libtorrent-leech-two.log
    exit 1
fi
