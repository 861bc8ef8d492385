"""libtorrent (python3-libtorrent 2.0) as a loopback seeder, leecher and torrent maker.

Run with Debian's interpreter: /usr/bin/python3 ltdrive.py COMMAND ...

  seed TORRENT SAVE_PARENT PORT
      Seeds from SAVE_PARENT (the folder that holds the content). Prints "seeding" once the
      data has been checked, then a status line every 5 s, until SIGTERM/SIGINT; then prints
      "stopped: uploaded N bytes" and exits 0. Exits 3 if the data does not check as complete.
  leech TORRENT OUT_DIR PORT [TIMEOUT [STALL]]
      Downloads into OUT_DIR. TORRENT may be a magnet link: then "metadata in S s" is
      printed once the info dictionary has been fetched from peers (BEP 9). Prints a progress line every 2 s; exits 0 with
      "finished in S s (R MiB/s)" (time from adding the torrent to all pieces verified).
      After TIMEOUT seconds (default 600) prints "TIMEOUT ... at P%" and exits 3; when no
      payload byte arrived for STALL seconds (default 0: never) prints "STALLED ... at P%"
      and exits 5. Both then print the peers' request queues.
  mktorrent SRC OUT PIECE_SIZE TRACKER_URL [hybrid|padded]
      Writes a v1-only torrent of SRC (file or folder) with PIECE_SIZE-byte pieces; with
      `hybrid`, a v1 + v2 torrent (BEP 52) whose files are aligned by BEP 47 padding files,
      as libtorrent 2 and qBittorrent make by default; with `padded`, a v1-only torrent with
      the same padding files.

Every session is created with all its settings at once: it listens on 127.0.0.1:PORT only
(LT_LISTEN=::1: on [::1]:PORT only),
DHT, LSD, UPnP and NAT-PMP are off, several connections per IP are allowed (every peer is
127.0.0.1), SSRF mitigation is off (the tracker is on 127.0.0.1). Peers use TCP only (uTP
off: loopback uTP would measure libtorrent's uTP, not the peer); encryption keeps
libtorrent's default (allowed, plaintext fallback), as in qBittorrent.
LT_SETTINGS='{"name": value, ...}' (JSON) overrides any setting, e.g. to enable uTP.
The seeder starts from lt.high_performance_seed().
"""
import json, os, signal, sys, time

import libtorrent as lt

MIB = 1 << 20
# The one address the session listens and dials on (LT_LISTEN, e.g. ::1 for IPv6 cases).
LISTEN = os.environ.get('LT_LISTEN', '127.0.0.1')


def settings(port, seed):
    s = lt.default_settings()
    if seed:
        s.update(lt.high_performance_seed())
    s.update({
        'listen_interfaces': '%s:%d' % (LISTEN if '.' in LISTEN else '[%s]' % LISTEN, port),
        'outgoing_interfaces': LISTEN,
        'enable_dht': False,
        'enable_lsd': False,
        'enable_upnp': False,
        'enable_natpmp': False,
        'dht_bootstrap_nodes': '',
        'enable_ip_notifier': False,
        'allow_multiple_connections_per_ip': True,
        'ssrf_mitigation': False,
        'announce_to_all_trackers': True,
        'announce_to_all_tiers': True,
        'enable_outgoing_utp': False,
        'enable_incoming_utp': False,
        'alert_mask': lt.alert_category.error | lt.alert_category.status
                      | lt.alert_category.tracker | lt.alert_category.storage,
        'user_agent': 'ltdrive/' + lt.__version__,
    })
    extra = os.environ.get('LT_SETTINGS')
    if extra:
        s.update(json.loads(extra))
    return s


def log(msg):
    print('[%8.2f] %s' % (time.monotonic() - T0, msg), flush=True)


# the announce in flight (its event), and whether the `completed` announce has been answered
ANNOUNCE = {'pending': None, 'completed_answered': False, 'stopped_sent': False}


def drain(ses):
    """print the interesting alerts; follow the announces"""
    for a in ses.pop_alerts():
        if isinstance(a, lt.tracker_announce_alert):
            ANNOUNCE['pending'] = int(a.event)
            if ANNOUNCE['pending'] == int(lt.event_t.stopped):
                ANNOUNCE['stopped_sent'] = True
        elif isinstance(a, (lt.tracker_reply_alert, lt.tracker_error_alert)):
            if ANNOUNCE['pending'] == int(lt.event_t.completed):
                ANNOUNCE['completed_answered'] = True
            ANNOUNCE['pending'] = None
        cat = a.category()
        if cat & lt.alert_category.error or isinstance(a, (
                lt.tracker_reply_alert, lt.tracker_error_alert, lt.tracker_warning_alert,
                lt.state_changed_alert, lt.torrent_finished_alert, lt.listen_succeeded_alert,
                lt.listen_failed_alert, lt.hash_failed_alert, lt.file_error_alert)):
            log('alert %s: %s' % (type(a).__name__, a.message()))


def add(ses, torrent, save_path):
    if torrent.startswith('magnet:'):
        atp = lt.parse_magnet_uri(torrent)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    atp.flags &= ~lt.torrent_flags.auto_managed     # no queueing
    atp.flags &= ~lt.torrent_flags.paused
    return ses.add_torrent(atp)


def rate(b):
    return '%.1f MiB/s' % (b / MIB)


def peers_line(h):
    out = []
    for p in h.get_peer_info():
        # peer_info::utp_socket (1 << 17) is not exported by the 2.0 bindings.
        out.append('%s:%d %r transport=%s down %s requests in flight %d, queued to send %d%s%s%s' % (
            p.ip[0], p.ip[1], p.client, 'utp' if p.flags & (1 << 17) else 'tcp',
            rate(p.payload_down_speed), p.download_queue_length,
            p.upload_queue_length, ' choked-by-peer' if p.flags & lt.peer_info.remote_choked else '',
            ' snubbed' if p.flags & lt.peer_info.snubbed else '',
            ' interesting' if p.flags & lt.peer_info.interesting else ''))
    return out


def note_connection(h, seen):
    """Logs once per peer how its connection is protected (MSE: RC4, or plaintext after an
    obfuscated handshake; or a plain handshake) and its transport (TCP or uTP)."""
    for p in h.get_peer_info():
        key = (p.ip[0], p.ip[1])
        if key in seen or p.flags & (lt.peer_info.connecting | lt.peer_info.handshake):
            continue
        seen.add(key)
        if p.flags & lt.peer_info.rc4_encrypted:
            how = 'rc4 encrypted'
        elif p.flags & lt.peer_info.plaintext_encrypted:
            how = 'plaintext after an encrypted handshake'
        else:
            how = 'plain handshake'
        # peer_info::utp_socket (1 << 17) is not exported by the 2.0 bindings.
        transport = 'utp' if p.flags & (1 << 17) else 'tcp'
        log('peer %s:%d %r: %s, transport=%s' % (p.ip[0], p.ip[1], p.client, how, transport))


def poll_ms(seen):
    """How long a loop waits for alerts: briefly until a connection has been noted (64 MiB
    can come and go over loopback in 0.2 s, its connection closed as soon as both sides are
    seeds), then 200 ms."""
    return 10 if not seen else 200


STOP = False


def on_signal(signum, frame):
    global STOP
    STOP = True


def seed(torrent, parent, port):
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ses = lt.session(settings(port, seed=True))
    h = add(ses, torrent, parent)
    announced = False
    incomplete_since = None
    last = 0.0
    seen = set()
    while not STOP:
        drain(ses)
        note_connection(h, seen)
        st = h.status()
        if st.errc.value():
            log('error: %s' % st.errc.message())
            sys.exit(3)
        if not announced and st.is_seeding:
            log('seeding')
            announced = True
        if st.state == lt.torrent_status.downloading and not st.is_seeding:
            incomplete_since = incomplete_since or time.monotonic()
            if time.monotonic() - incomplete_since > 3:
                log('the data does not check as complete: %d pieces of %d'
                    % (st.num_pieces, h.torrent_file().num_pieces()))
                sys.exit(3)
        else:
            incomplete_since = None
        now = time.monotonic()
        if now - last >= 5:
            last = now
            log('status %s peers %d up %s uploaded %d' % (
                st.state, st.num_peers, rate(st.upload_payload_rate), st.total_payload_upload))
        ses.wait_for_alert(poll_ms(seen))
    st = h.status()
    log('stopped: uploaded %d bytes' % st.total_payload_upload)
    ses.pause()
    del ses


def leech(torrent, out, port, limit, stall):
    ses = lt.session(settings(port, seed=False))
    os.makedirs(out, exist_ok=True)
    t_add = time.monotonic()
    h = add(ses, torrent, out)
    while not h.status().has_metadata:
        drain(ses)
        if time.monotonic() - t_add > limit:
            log('TIMEOUT after %.0f s waiting for metadata' % (time.monotonic() - t_add))
            sys.exit(3)
        ses.wait_for_alert(20)
    log('metadata in %.3f s' % (time.monotonic() - t_add))
    total = h.torrent_file().total_size()
    last = 0.0
    done, done_at = -1, t_add
    st = h.status()
    seen = set()
    while True:
        drain(ses)
        note_connection(h, seen)
        st = h.status()
        now = time.monotonic()
        if st.errc.value():
            log('error: %s' % st.errc.message())
            sys.exit(4)
        if st.has_metadata and (st.is_seeding or st.is_finished) \
                and st.state not in (lt.torrent_status.checking_files,
                                     lt.torrent_status.checking_resume_data):
            took = now - t_add
            log('progress 100.0%% down %s peers %d state %s' % (
                rate(st.download_payload_rate), st.num_peers, st.state))
            log('finished in %.2f s (%.1f MiB/s)' % (took, total / MIB / took if took else 0))
            break
        if now - last >= 2:
            last = now
            log('progress %.1f%% down %s peers %d state %s' % (
                st.progress * 100, rate(st.download_payload_rate), st.num_peers, st.state))
        if st.total_payload_download != done:
            done, done_at = st.total_payload_download, now
        what = None
        if now - t_add > limit:
            what, code = 'TIMEOUT after %.0f s' % (now - t_add), 3
        elif stall and now - done_at > stall:
            what, code = 'STALLED (nothing for %.0f s, %.0f s after start)' % (
                now - done_at, now - t_add), 5
        if what:
            log('%s at progress %.1f%% (%d of %d pieces, %d bytes verified)' % (
                what, st.progress * 100, st.num_pieces, h.torrent_file().num_pieces(),
                st.total_wanted_done))
            for line in peers_line(h):
                log('  peer ' + line)
            sys.exit(code)
        ses.wait_for_alert(poll_ms(seen))
    # leave the swarm: once the tracker has answered the `completed` announce (removing the
    # torrent while it is in flight skips `stopped`), remove the torrent, which announces
    # `stopped`; destroying the session waits for that announce and closes the files
    end = time.monotonic() + 3
    while not ANNOUNCE['completed_answered'] and time.monotonic() < end:
        ses.wait_for_alert(100)
        drain(ses)
    ses.remove_torrent(h)
    end = time.monotonic() + 3
    while not ANNOUNCE['stopped_sent'] and time.monotonic() < end:
        ses.wait_for_alert(100)
        drain(ses)
    del h
    del ses


def mktorrent(src, out, piece_size, tracker, kind='v1'):
    fs = lt.file_storage()
    lt.add_files(fs, src)
    flags = {'v1': lt.create_torrent.v1_only, 'hybrid': 0,
             'padded': lt.create_torrent.v1_only | lt.create_torrent.canonical_files}[kind]
    ct = lt.create_torrent(fs, piece_size, flags=flags)
    ct.add_tracker(tracker, 0)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(src)))
    with open(out, 'wb') as f:
        f.write(lt.bencode(ct.generate()))


T0 = time.monotonic()

if __name__ == '__main__':
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == 'seed':
        seed(a[0], a[1], int(a[2]))
    elif cmd == 'leech':
        leech(a[0], a[1], int(a[2]), float(a[3]) if len(a) > 3 else 600.0,
              float(a[4]) if len(a) > 4 else 0.0)
    elif cmd == 'mktorrent':
        mktorrent(a[0], a[1], int(a[2]), a[3], a[4] if len(a) > 4 else 'v1')
    else:
        sys.exit('unknown command ' + cmd)
