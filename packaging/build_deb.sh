#!/usr/bin/env bash
# Build dist/histoguard_VERSION_ARCH.deb from the frozen folder that packaging/build_linux.sh made.
#
#   packaging/build_linux.sh diagnose && packaging/build_deb.sh
#
# The package installs the folder in /opt/histoguard, the command /usr/bin/histoguard, a menu entry and
# the icon, and declares the Debian libraries Qt needs (the bundle carries everything else).
# Install it with `sudo apt-get install ./dist/histoguard_*.deb`, check it with `histoguard --self-test`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
APP=dist/histoguard
[ -x "$APP/histoguard" ] || { echo "no $APP/histoguard: run packaging/build_linux.sh first" >&2; exit 2; }
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' engine/__init__.py)"
EDITION="$(cat "$APP/EDITION" 2>/dev/null || echo diagnose)"
ARCH="$(dpkg --print-architecture)"
PKG="$(mktemp -d)/histoguard"

mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
    "$PKG/usr/share/icons/hicolor/256x256/apps" "$PKG/usr/share/icons/hicolor/scalable/apps" \
    "$PKG/usr/share/doc/histoguard"
cp -a "$APP" "$PKG/opt/histoguard"
rm -f "$PKG/opt/histoguard/install-user.sh"  # the portable archive's; the package has its own menu entry
ln -s /opt/histoguard/histoguard "$PKG/usr/bin/histoguard"
install -m 644 resources/histoguard.desktop "$PKG/usr/share/applications/histoguard.desktop"
install -m 644 resources/histoguard.png "$PKG/usr/share/icons/hicolor/256x256/apps/histoguard.png"
install -m 644 resources/histoguard.svg "$PKG/usr/share/icons/hicolor/scalable/apps/histoguard.svg"
install -m 644 packaging/linux/copyright "$PKG/usr/share/doc/histoguard/copyright"

SIZE_KB="$(du -sk "$PKG" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE_KB/" -e "s/@EDITION@/$EDITION/" \
    packaging/linux/control.in > "$PKG/DEBIAN/control"
install -m 755 packaging/linux/postinst packaging/linux/postrm "$PKG/DEBIAN/"

OUT="dist/histoguard_${VERSION}_${ARCH}.deb"
# zstd (dpkg >= 1.21.18: Debian 12, Ubuntu 21.10+) packs in 5 s; DEB_COMPRESSION=xz makes an 18 % smaller
# package that Debian 11 also reads, in 80 s
case "${DEB_COMPRESSION:-zstd}" in
  zstd) COMPRESS=(-Zzstd -z9) ;;
  xz) COMPRESS=(-Zxz) ;;
  *) echo "DEB_COMPRESSION must be zstd or xz" >&2; exit 2 ;;
esac
dpkg-deb --root-owner-group "${COMPRESS[@]}" --build "$PKG" "$OUT" >/dev/null
rm -rf "$(dirname "$PKG")"
echo "package: $OUT ($(du -sh "$OUT" | cut -f1), $((SIZE_KB / 1024)) MiB installed)"
