#!/usr/bin/env bash
# Validates the desktop integration files, builds the .deb (stripped; debug symbols in a
# separate -dbgsym package), checks its size, installs it, checks the installed binary and the
# .torrent association, and removes the package again.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v desktop-file-validate >/dev/null || missing+=(desktop-file-utils)
command -v appstreamcli >/dev/null || missing+=(appstream)
command -v xdg-mime >/dev/null || missing+=(xdg-utils)
command -v readelf >/dev/null || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "-- desktop-file-validate"
desktop-file-validate packaging/linux/org.rivulet.Rivulet.desktop
echo "-- appstreamcli validate"
appstreamcli validate --no-net packaging/linux/org.rivulet.Rivulet.metainfo.xml

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
echo "-- cargo deb --profile dist"
cargo deb --profile dist
deb=$(ls -t target/debian/rivulet_*.deb | head -n 1)

echo "-- package size"
# Targets: installed size at most 25 MiB, the .deb itself at most 10 MiB.
installed_kib=$(dpkg-deb -f "$deb" Installed-Size)
deb_bytes=$(stat -c %s "$deb")
awk -v k="$installed_kib" -v b="$deb_bytes" 'BEGIN {
    printf "installed: %d KiB (%.1f MiB, target <= 25 MiB)\n", k, k / 1024
    printf ".deb: %d bytes (%.1f MiB, target <= 10 MiB)\n", b, b / 1048576 }'
[ "$installed_kib" -le $((25 * 1024)) ] || { echo "installed size above 25 MiB" >&2; exit 1; }
[ "$deb_bytes" -le $((10 * 1024 * 1024)) ] || { echo ".deb above 10 MiB" >&2; exit 1; }
unpacked=$(mktemp -d)
dpkg-deb -x "$deb" "$unpacked"
if readelf -S --wide "$unpacked/usr/bin/rivulet" | grep -q '\.debug_'; then
    echo "usr/bin/rivulet still has debug sections:" >&2
    readelf -S --wide "$unpacked/usr/bin/rivulet" | grep '\.debug_' >&2
    exit 1
fi
rm -rf "$unpacked"
echo "usr/bin/rivulet has no .debug_* sections"

echo "-- install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null
trap 'DEBIAN_FRONTEND=noninteractive dpkg -P rivulet >/dev/null || true' EXIT

echo "-- installed binary"
/usr/bin/rivulet --version
for f in /usr/share/applications/org.rivulet.Rivulet.desktop \
         /usr/share/metainfo/org.rivulet.Rivulet.metainfo.xml \
         /usr/share/icons/hicolor/256x256/apps/org.rivulet.Rivulet.png; do
    [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }
done

echo "-- MIME association"
for mime in application/x-bittorrent x-scheme-handler/magnet; do
    handler=$(xdg-mime query default "$mime")
    echo "$mime -> $handler"
    [ "$handler" = org.rivulet.Rivulet.desktop ] || { echo "$mime is not handled by Rivulet" >&2; exit 1; }
done
echo "packaging checks passed"
