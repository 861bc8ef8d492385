#!/usr/bin/env bash
# What RC4 (MSE) costs: 1 GiB over loopback with --encryption require against disabled
# (see benches/loopback_ab.sh). Run from the repository root after `cargo build --release`.
exec "$(dirname "$0")/loopback_ab.sh" rc4 "--encryption require" plain "--encryption disabled"
