#!/bin/sh
# Renders every icon file from the two SVG sources:
#   assets/icon.svg     the icon (all sizes from 32 px up, and the scalable one)
#   assets/icon-16.svg  the same design fitted to the 16 px pixel grid
# Writes assets/icons/hicolor/*, packaging/windows/rivulet.ico and
# packaging/macos/rivulet.icns.
#
# Needs (Debian): librsvg2-bin optipng imagemagick icnsutils python3
# Run from anywhere: sh packaging/render-icons.sh
set -eu
cd "$(dirname "$0")/.."

# ImageMagick 6 is `convert`; prefer the real one over any stand-in earlier in PATH.
CONVERT=/usr/bin/convert
[ -x "$CONVERT" ] || CONVERT=convert

ID=org.rivulet.Rivulet
H=assets/icons/hicolor
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for n in 16 32 48 64 128 256 512; do
    mkdir -p "$H/${n}x${n}/apps"
    src=assets/icon.svg
    [ "$n" = 16 ] && src=assets/icon-16.svg
    rsvg-convert -w "$n" -h "$n" "$src" -o "$H/${n}x${n}/apps/$ID.png"
    optipng -quiet -o7 -strip all "$H/${n}x${n}/apps/$ID.png"
done
mkdir -p "$H/scalable/apps"
cp assets/icon.svg "$H/scalable/apps/$ID.svg"

rsvg-convert -w 1024 -h 1024 assets/icon.svg -o "$TMP/1024.png"
optipng -quiet -o7 -strip all "$TMP/1024.png"

# Windows: 16-256 px in one .ico.
p() { echo "$H/$1x$1/apps/$ID.png"; }
"$CONVERT" "$(p 16)" "$(p 32)" "$(p 48)" "$(p 64)" "$(p 128)" "$(p 256)" packaging/windows/rivulet.ico

# macOS: 16-1024 px in one .icns.
png2icns packaging/macos/rivulet.icns "$(p 16)" "$(p 32)" "$(p 48)" "$(p 128)" "$(p 256)" "$(p 512)" "$TMP/1024.png" >/dev/null

# Both tools re-encode their large PNG entries with weak compression:
# put the optimised PNGs back in (the format of those entries is PNG anyway).
python3 - "$H" "$TMP/1024.png" <<'EOF'
import struct, sys
H, big = sys.argv[1], sys.argv[2]
png = lambda n: open(f"{H}/{n}x{n}/apps/org.rivulet.Rivulet.png", "rb").read()

path = "packaging/windows/rivulet.ico"
d = open(path, "rb").read()
count = struct.unpack("<H", d[4:6])[0]
entries = []
for i in range(count):
    w, h, cc, r, planes, bpp, size, off = struct.unpack("<BBBBHHII", d[6 + 16 * i:22 + 16 * i])
    data = d[off:off + size]
    if w == 0:  # 0 means 256 px
        data, planes, bpp = png(256), 1, 32
    entries.append((w, h, cc, r, planes, bpp, data))
head, body, off = struct.pack("<HHH", 0, 1, count), b"", 6 + 16 * count
for w, h, cc, r, planes, bpp, data in entries:
    head += struct.pack("<BBBBHHII", w, h, cc, r, planes, bpp, len(data), off + len(body))
    body += data
open(path, "wb").write(head + body)

path = "packaging/macos/rivulet.icns"
d = open(path, "rb").read()
assert d[:4] == b"icns"
swap = {b"ic08": png(256), b"ic09": png(512), b"ic10": open(big, "rb").read()}
out, pos = b"", 8
while pos < len(d):
    kind, length = d[pos:pos + 4], struct.unpack(">I", d[pos + 4:pos + 8])[0]
    data = swap.get(kind, d[pos + 8:pos + length])
    out += kind + struct.pack(">I", len(data) + 8) + data
    pos += length
open(path, "wb").write(b"icns" + struct.pack(">I", len(out) + 8) + out)
EOF
echo "icons written"
