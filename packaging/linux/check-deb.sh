#!/usr/bin/env bash
# Validates the desktop integration files, builds the .deb, installs it, checks the installed
# binary and the .torrent association, and removes the package again.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v desktop-file-validate >/dev/null || missing+=(desktop-file-utils)
command -v appstreamcli >/dev/null || missing+=(appstream)
command -v xdg-mime >/dev/null || missing+=(xdg-utils)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "-- desktop-file-validate"
desktop-file-validate packaging/linux/org.rivulet.Rivulet.desktop
echo "-- appstreamcli validate"
appstreamcli validate --no-net packaging/linux/org.rivulet.Rivulet.metainfo.xml

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
echo "-- cargo deb"
cargo deb
deb=$(ls -t target/debian/rivulet_*.deb | head -n 1)

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
