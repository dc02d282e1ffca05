#!/usr/bin/env bash
# Build HistoGuard for macOS, on a Mac (PyInstaller cannot cross-compile):
#   packaging/macos/build_macos.sh [diagnose|full]
# Needs Python 3.10+ from python.org or Homebrew and the Xcode command-line tools (codesign, hdiutil).
# Makes dist/HistoGuard.app and dist/HistoGuard-VERSION-EDITION-macos-ARCH.dmg (drag to Applications;
# no admin rights). Signing and notarisation: see packaging/README.md.
set -euo pipefail
EDITION="${1:-diagnose}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
case "$EDITION" in
  diagnose) REQS=(-r packaging/requirements-diagnose.txt) ;;
  full) REQS=(-r packaging/requirements-build.txt ".") ;;
  *) echo "edition must be diagnose or full" >&2; exit 2 ;;
esac
VENV="build/venv-$EDITION"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "${REQS[@]}"
VERSION="$("$VENV/bin/python" -c 'import sys; sys.path.insert(0, "."); import engine; print(engine.__version__)')"
rm -rf dist/histoguard dist/HistoGuard.app
HISTOGUARD_EDITION="$EDITION" "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --workpath "build/pyinstaller-$EDITION" --distpath dist packaging/histoguard.spec
echo "$EDITION" > dist/HistoGuard.app/Contents/Resources/EDITION
QT_QPA_PLATFORM=offscreen dist/HistoGuard.app/Contents/MacOS/histoguard --self-test
# ad-hoc signature so Apple silicon runs it; a Developer ID signature replaces it for distribution
codesign --force --deep --sign "${CODESIGN_IDENTITY:--}" dist/HistoGuard.app
DMG="dist/HistoGuard-$VERSION-$EDITION-macos-$(uname -m).dmg"
rm -f "$DMG"
hdiutil create -volname HistoGuard -srcfolder dist/HistoGuard.app -ov -format UDZO "$DMG"
echo "app: dist/HistoGuard.app; disk image: $DMG"
