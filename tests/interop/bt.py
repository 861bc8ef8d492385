"""Helpers shared by tests/interop/run.sh and the benches/*.sh scripts.

Importable (``import bt``) and a command line: ``python3 bt.py COMMAND ARGS...``.
Runs on any Python 3 (no libtorrent here; the libtorrent driver is ltdrive.py).

Commands:
  freeports N                       N free TCP ports on 127.0.0.1
  infohash TORRENT                  hex SHA-1 of the exact info bytes
  name TORRENT / private TORRENT    the info dict's name / private flag
  magnet TORRENT [TRACKER]          the torrent's magnet link (btih, dn, and tr if given)
  wlwait PORT SECS HASH...          until the tracker accepts announces for every hash
  waitseed PORT HASH SECS           until the tracker's scrape counts a seeder
  waitpeer PORT HASH PEERPORT SECS  until the tracker hands out 127.0.0.1:PEERPORT
  peers PORT HASH                   "ip port" lines: the peers (and BEP 7 peers6) the tracker
                                    hands a probe leecher
  scrape_counts PORT HASH           "complete incomplete"
  scrapewait PORT HASH SECS PAUSE CONDITION...
                                    until the scrape counts meet every CONDITION (e.g.
                                    complete<=1 incomplete=0 incomplete>=1), trying every
                                    PAUSE s; prints the last "complete incomplete" read,
                                    exits 1 if they never did within SECS
  mkdata KIND PARENT                random content under PARENT; prints its name
  compare SRC DST                   byte-for-byte, no missing or extra files
  tsettings CONFDIR PORT            transmission settings.json for loopback
  timefile FILE                     "wall cpu rss_mib" from a `/usr/bin/time -v` report
  proccpu PID                       "cpu_seconds peak_rss_mib" of a live process (/proc)

The tracker is on 127.0.0.1, or on TRACKER_HOST (e.g. [::1]) when that is set.
"""
import os, re, sys, socket, hashlib, time, filecmp, json, operator, random, urllib.request, urllib.parse
import ipaddress

MIB = 1 << 20
TRACKER_HOST = os.environ.get('TRACKER_HOST', '127.0.0.1')


# ---------------------------------------------------------------- bencode
def bdecode(b, i=0):
    """(value, next offset) of the bencoded value at b[i:]; strings stay bytes."""
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
    """the exact bytes of the torrent's info dict (what the info hash is taken over)"""
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


def infohash(path):
    return hashlib.sha1(raw_info(path)).hexdigest()


# ---------------------------------------------------------------- tracker
def q(h):
    return urllib.parse.quote_from_bytes(bytes.fromhex(h))


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return bdecode(r.read())[0]


def announce(port, h, event, left=0):
    # a probe peer on port 9; always followed by event=stopped so it leaves no trace
    return get('http://%s:%d/announce?info_hash=%s&peer_id=-PROBE-0000000000000'
               '&port=9&uploaded=0&downloaded=0&left=%d&compact=1&numwant=200&event=%s'
               % (TRACKER_HOST, port, q(h), left, event))


def scrape(port, h):
    d = get('http://%s:%d/scrape?info_hash=%s' % (TRACKER_HOST, port, q(h)))
    f = d.get(b'files', {}).get(bytes.fromhex(h)) or {}
    return f.get(b'complete', 0), f.get(b'incomplete', 0)


def count_test(cond):
    """CONDITION of scrapewait (complete or incomplete, then <=, = or >= and a number) as a
    test of the (complete, incomplete) pair"""
    m = re.fullmatch(r'(complete|incomplete)(<=|=|>=)(\d+)', cond)
    if not m:
        sys.exit('bad scrape condition %r' % cond)
    k, op, n = ('complete', 'incomplete').index(m.group(1)), m.group(2), int(m.group(3))
    test = {'<=': operator.le, '=': operator.eq, '>=': operator.ge}[op]
    return lambda counts: test(counts[k], n)


def compact_peers(d):
    p = d.get(b'peers', b'')
    if isinstance(p, list):          # dictionary model
        return [(x.get(b'ip', b'').decode(), x.get(b'port', 0)) for x in p]
    p6 = d.get(b'peers6', b'')       # BEP 7: 16-byte addresses
    return ([('%d.%d.%d.%d' % tuple(p[k:k+4]), int.from_bytes(p[k+4:k+6], 'big'))
             for k in range(0, len(p) - 5, 6)]
            + [(str(ipaddress.IPv6Address(p6[k:k+16])), int.from_bytes(p6[k+16:k+18], 'big'))
               for k in range(0, len(p6) - 17, 18)])


def wait_for(deadline, pause, probe):
    """probe() every PAUSE s until it returns None (done), then None; once the time is past
    DEADLINE (epoch s), what the last try returned instead (or its exception's repr)"""
    while True:
        try:
            last = probe()
            if last is None:
                return None
        except Exception as e:
            last = repr(e)
        if time.time() > deadline:
            return last
        time.sleep(pause)


# ---------------------------------------------------------------- data
# KIND -> (name of the top-level entry, [(relative path, size)])
def _kinds():
    awkward = [                                 # ~24 MiB of awkward sizes, nested folders
        ('awkward/00_empty', 0),                # zero-length, first
        ('awkward/01_one_byte', 1),
        ('awkward/02_block_minus_1.bin', 16383),
        ('awkward/03_block_plus_1.bin', 16385),
        ('awkward/04_big/deeper/still/05_five_mib_odd.bin', 5 * MIB + 777),
        ('awkward/04_big/06_empty', 0),         # zero-length in the middle
        ('awkward/04_big/07_one_byte', 1),
        ('awkward/04_big/08_seven_mib_plus_1.bin', 7 * MIB + 1),
        ('awkward/09_exact_block.bin', 16384),
        ('awkward/10_mid/11_nine_mib_odd.bin', 9 * MIB + 65535),
        ('awkward/10_mid/12_two_mib_minus_1.bin', 2 * MIB - 1),
        ('awkward/10_mid/13/14/15_one_byte', 1),
        ('awkward/16_one_mib_plus_3.bin', MIB + 3),
        ('awkward/17_odd.bin', 100003),
        ('awkward/zz_empty_last', 0),           # zero-length, last
    ]
    # 5,000 files of 1 KiB to 1 MiB in 50 folders (~150 MiB): mostly small, as a photo or
    # source archive is; the sizes are the same on every run
    rng = random.Random(5000)
    many = []
    for i in range(5000):
        top = 16 * 1024 if i % 50 < 40 else 128 * 1024 if i % 50 < 49 else MIB
        many.append(('many/d%02d/f%04d.bin' % (i // 100, i), rng.randint(1024, top)))
    return {
        # 3 MiB + 12345: not a multiple of any power-of-two piece length
        'single': ('single.bin', [('single.bin', 3 * MIB + 12345)]),
        'multi': ('multi', [
            ('multi/a_empty.txt', 0),               # zero-length, first
            ('multi/b_tiny.bin', 1000),             # smaller than a block
            ('multi/c_big.bin', 2 * MIB + 777),     # spans many pieces
            ('multi/d_sub/deeper/e_odd.bin', 100003),
            ('multi/d_sub/f_empty', 0),             # zero-length in the middle
            ('multi/d_sub/g_block.bin', 16383),     # just under 16 KiB
            ('multi/z_last.bin', 54321),
        ]),
        # 16 MiB + 12345: a short last piece and a short last block
        'single16': ('single16.bin', [('single16.bin', 16 * MIB + 12345)]),
        # exactly 64 MiB: the size of the libtorrent stall report
        'single64': ('single64.bin', [('single64.bin', 64 * MIB)]),
        # 256 MiB + 4321: a short last piece whatever the piece length
        'single256': ('single256.bin', [('single256.bin', 256 * MIB + 4321)]),
        'multi_awkward': ('awkward', awkward),
        'many5000': ('many', many),
    }


def mkdata(kind, parent):
    """random content of KIND under PARENT; returns the top-level name"""
    kinds = _kinds()
    if kind not in kinds:
        sys.exit('unknown data kind %s (known: %s)' % (kind, ' '.join(sorted(kinds))))
    name, files = kinds[kind]
    os.makedirs(parent, exist_ok=True)
    for rel, size in files:
        p = os.path.join(parent, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            left = size
            while left:
                n = min(left, MIB)
                f.write(os.urandom(n)); left -= n
    return name


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
    # a seeder that knows no BEP 47 (aria2) keeps the padding files it made beside the data
    s = {rel for rel in files(src) if '.pad' not in rel.split(os.sep)}
    d = files(dst)
    for rel in sorted(s - d):
        bad.append('missing: %s' % rel)
    for rel in sorted(d - s):
        bad.append('extra: %s' % rel)
    for rel in sorted(s & d):
        if not filecmp.cmp(os.path.join(src, rel), os.path.join(dst, rel), shallow=False):
            bad.append('differs: %s (size %d vs %d)' % (rel, os.path.getsize(os.path.join(src, rel)),
                                                       os.path.getsize(os.path.join(dst, rel))))
    return bad


# ---------------------------------------------------------------- clients
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


def parse_time(path):
    """wall s, cpu s, peak RSS MiB from a `/usr/bin/time -v` report"""
    t = open(path).read()
    def field(name):
        for line in t.splitlines():
            if line.strip().startswith(name):
                return line.rsplit(': ', 1)[1].strip()
        raise SystemExit('no "%s" in %s' % (name, path))
    wall = 0.0
    for part in field('Elapsed (wall clock) time').split(':'):
        wall = wall * 60 + float(part)
    cpu = float(field('User time (seconds)')) + float(field('System time (seconds)'))
    rss = int(field('Maximum resident set size (kbytes)')) / 1024.0
    return wall, cpu, rss


def proc_cpu(pid):
    """cpu seconds (user+sys, all threads) and peak RSS MiB (VmHWM) of a live process"""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    tick = os.sysconf('SC_CLK_TCK')
    cpu = (int(fields[11]) + int(fields[12])) / tick     # utime, stime (fields 14, 15)
    rss = 0.0
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                rss = int(line.split()[1]) / 1024.0
    return cpu, rss


# ---------------------------------------------------------------- command line
def main(argv):
    cmd, a = argv[1], argv[2:]
    if cmd == 'freeports':
        socks = []
        for _ in range(int(a[0])):
            s = socket.socket(); s.bind(('127.0.0.1', 0)); socks.append(s)
        print(' '.join(str(s.getsockname()[1]) for s in socks))
        for s in socks: s.close()
    elif cmd == 'infohash':
        print(infohash(a[0]))
    elif cmd == 'name':
        print(bdecode(raw_info(a[0]))[0][b'name'].decode())
    elif cmd == 'pads':
        # how many BEP 47 padding files, and whether it is a hybrid (v1 + v2) torrent
        info = bdecode(raw_info(a[0]))[0]
        pads = sum(1 for f in info.get(b'files', []) if b'p' in f.get(b'attr', b''))
        print(pads, 'hybrid' if info.get(b'meta version') == 2 and b'pieces' in info else 'v1')
    elif cmd == 'magnet':
        link = 'magnet:?xt=urn:btih:%s&dn=%s' % (
            infohash(a[0]), urllib.parse.quote(bdecode(raw_info(a[0]))[0][b'name'], safe=''))
        if len(a) > 1:
            link += '&tr=' + urllib.parse.quote(a[1], safe='')
        print(link)
    elif cmd == 'private':
        print(bdecode(raw_info(a[0]))[0].get(b'private', 0))
    elif cmd == 'wlwait':
        # wait until the tracker accepts announces for every hash (whitelist reloaded)
        port, deadline = int(a[0]), time.time() + float(a[1])
        def accepted(h):
            d = announce(port, h, 'started')
            if b'failure reason' in d:
                return d
            announce(port, h, 'stopped')
        for h in a[2:]:
            last = wait_for(deadline, 0.2, lambda: accepted(h))
            if last is not None:
                sys.exit('tracker does not accept %s: %r' % (h, last))
    elif cmd == 'waitseed':
        # wait until the tracker lists at least one seeder for the hash
        port, h, deadline = int(a[0]), a[1], time.time() + float(a[2])
        def seeded():
            c, i = scrape(port, h)
            if c < 1:
                return 'complete=%d incomplete=%d' % (c, i)
        last = wait_for(deadline, 0.3, seeded)
        if last is not None:
            sys.exit('tracker lists no seeder for %s (%s)' % (h, last))
    elif cmd == 'waitpeer':
        # wait until the tracker hands out 127.0.0.1:PEERPORT for the hash (a given seeder,
        # not a stale one of an earlier round); the probe announces as a leecher, then stops
        port, h, peer, deadline = int(a[0]), a[1], int(a[2]), time.time() + float(a[3])
        def listed():
            d = announce(port, h, 'started', left=1)
            announce(port, h, 'stopped', left=1)
            peers = compact_peers(d)
            if ('127.0.0.1', peer) not in peers:
                return 'peers %r' % peers
        last = wait_for(deadline, 0.3, listed)
        if last is not None:
            sys.exit('tracker does not list 127.0.0.1:%d for %s (%s)' % (peer, h, last))
    elif cmd == 'peers':
        # the peers the tracker hands a probe leecher for the hash, as ip port lines
        port, h = int(a[0]), a[1]
        d = announce(port, h, 'started', left=1)
        announce(port, h, 'stopped', left=1)
        for ip, p in compact_peers(d):
            print(ip, p)
    elif cmd == 'scrape_counts':
        print('%d %d' % scrape(int(a[0]), a[1]))
    elif cmd == 'scrapewait':
        # wait until the tracker's scrape counts for the hash meet every condition
        port, h, deadline, pause = int(a[0]), a[1], time.time() + float(a[2]), float(a[3])
        tests, counts = [count_test(c) for c in a[4:]], []
        def met():
            counts[:] = scrape(port, h)
            if not all(t(counts) for t in tests):
                return 'not yet'
        missed = wait_for(deadline, pause, met)
        if counts:
            print('%d %d' % tuple(counts))
        sys.exit(0 if missed is None else 1)
    elif cmd == 'mkdata':
        print(mkdata(a[0], a[1]))
    elif cmd == 'compare':
        bad = compare(a[0], a[1])
        for b in bad[:20]:
            print(b)
        sys.exit(1 if bad else 0)
    elif cmd == 'tsettings':
        tsettings(a[0], int(a[1]))
    elif cmd == 'timefile':
        print('%.2f %.2f %.1f' % parse_time(a[0]))
    elif cmd == 'proccpu':
        print('%.2f %.1f' % proc_cpu(int(a[0])))
    else:
        sys.exit('unknown helper command ' + cmd)


if __name__ == '__main__':
    main(sys.argv)
