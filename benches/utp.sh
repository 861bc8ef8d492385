#!/usr/bin/env bash
# uTP against TCP: 1 GiB over loopback with --transport utp against --transport tcp, no
# encryption either way (see benches/loopback_ab.sh). Run from the repository root after
# `cargo build --release`.
exec "$(dirname "$0")/loopback_ab.sh" \
    utp "--encryption disabled --transport utp" tcp "--encryption disabled --transport tcp"
