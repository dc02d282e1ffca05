#!/usr/bin/env bash
# The installer check: install dist/histoguard_*.deb into a clean Debian root with apt-get (which pulls
# the declared dependencies from the Debian mirror), then run the installed app's self-test there, with
# no network for the app (`unshare -n`).
#
#   sudo packaging/check_deb_chroot.sh [CHROOT_DIR]     (default: build/chroot-bookworm; kept for reruns)
#
# Needs root, debootstrap and a Debian mirror (DEBIAN_MIRROR, default deb.debian.org). The first run
# bootstraps a minimal bookworm (a few minutes); later runs reuse it, after removing any earlier install.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CHROOT="${1:-$ROOT/build/chroot-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEB="$(ls -t "$ROOT"/dist/histoguard_*.deb 2>/dev/null | head -1)"
[ -n "$DEB" ] || { echo "no dist/histoguard_*.deb: run packaging/build_deb.sh first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap and chroot need it)" >&2; exit 2; }

if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
  echo "== bootstrapping a minimal Debian bookworm in $CHROOT"
  debootstrap --variant=minbase bookworm "$CHROOT" "$MIRROR" >/dev/null
fi
cleanup() { umount "$CHROOT/proc" 2>/dev/null || true; }
trap cleanup EXIT
mount -t proc proc "$CHROOT/proc"
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
run() { chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

if run dpkg -s histoguard >/dev/null 2>&1; then  # an earlier check: back to the bare root, dependencies too
  run apt-get purge -y -qq histoguard >/dev/null
  run apt-get autoremove --purge -y -qq >/dev/null
fi
echo "== clean root: $(run sh -c 'dpkg -l | grep -c ^ii') packages, no histoguard: $(run sh -c 'command -v histoguard || echo none')"
cp "$DEB" "$CHROOT/tmp/"
echo "== apt-get install ./$(basename "$DEB")"
run apt-get update -qq
run sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y /tmp/$(basename "$DEB")" 2>&1 \
    | grep -E "newly installed|^Setting up histoguard"
echo "== installed: $(run dpkg-query -W -f='${Package} ${Version} ${Installed-Size} KiB\n' histoguard)"
run test -x /usr/bin/histoguard
run test -f /usr/share/applications/histoguard.desktop
run test -f /usr/share/icons/hicolor/256x256/apps/histoguard.png
echo "== self-test, network off"
HOME_DIR="/tmp/selftest-home"
run rm -rf "$HOME_DIR" && run mkdir -p "$HOME_DIR"
unshare -n chroot "$CHROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME="$HOME_DIR" LANG=C.UTF-8 \
    QT_QPA_PLATFORM=offscreen histoguard --self-test
echo "== command line: $(run histoguard --version)"
ERR="$(mktemp)"
run histoguard demo-data /tmp/selftest-data --patients-per-class 1 --images-per-patient 2 | tail -1
if run histoguard train --data /tmp/selftest-data --out /tmp/selftest-run 2>"$ERR"; then
  echo "the Diagnose edition trained a model: it should have said it needs PyTorch" >&2; exit 1
fi
echo "== full-only command: $(head -c 80 "$ERR")..."
grep -q "needs PyTorch" "$ERR"
run rm -rf /tmp/selftest-data /tmp/selftest-run
run rm -f "/tmp/$(basename "$DEB")"
echo "== passed"
