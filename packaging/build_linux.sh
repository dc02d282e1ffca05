#!/usr/bin/env bash
# Build HistoGuard for Linux: the one-folder app (PyInstaller) and its portable archive.
#
#   packaging/build_linux.sh [diagnose|full]        (default: diagnose)
#
# Makes a clean build environment in build/venv-EDITION (from PyPI, or a local index with
# PIP_INDEX_URL), freezes the app into dist/histoguard/ and packs
# dist/histoguard-VERSION-EDITION-linux-ARCH.tar.gz, which runs from any folder without admin rights.
# packaging/build_deb.sh turns the same folder into a .deb.
set -euo pipefail
EDITION="${1:-diagnose}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
case "$EDITION" in
  diagnose) REQS=(-r packaging/requirements-diagnose.txt) ;;
  full) REQS=(-r packaging/requirements-build.txt ".") ;;
  *) echo "edition must be diagnose or full, not '$EDITION'" >&2; exit 2 ;;
esac
PY="${PYTHON:-python3}"
VENV="build/venv-$EDITION"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
if ! "$VENV/bin/pip" install -q "${REQS[@]}" >"build/pip-$EDITION.log" 2>&1; then
  cat "build/pip-$EDITION.log" >&2
  echo "build_linux.sh: pip install failed for the $EDITION edition (its output is above)" >&2
  exit 1
fi
VERSION="$("$VENV/bin/python" -c 'import sys; sys.path.insert(0, "."); import engine; print(engine.__version__)')"
ARCH="$(uname -m)"

rm -rf "build/pyinstaller-$EDITION" dist/histoguard
HISTOGUARD_EDITION="$EDITION" "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --workpath "build/pyinstaller-$EDITION" --distpath dist packaging/histoguard.spec
echo "$EDITION" > dist/histoguard/EDITION
cp packaging/linux/install-user.sh dist/histoguard/

# The frozen app must pass its own self-test before anything is packed.
QT_QPA_PLATFORM=offscreen HOME="$(mktemp -d)" dist/histoguard/histoguard --self-test

ARCHIVE="dist/histoguard-$VERSION-$EDITION-linux-$ARCH.tar.gz"
tar -C dist -czf "$ARCHIVE" histoguard
echo "folder:  dist/histoguard ($(du -sh dist/histoguard | cut -f1))"
echo "archive: $ARCHIVE ($(du -sh "$ARCHIVE" | cut -f1))"
