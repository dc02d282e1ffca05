#!/usr/bin/env bash
# Put this unpacked HistoGuard folder on your PATH and in your applications menu, for you alone: no admin
# rights, nothing outside your home folder. `install-user.sh --remove` takes it out again (the folder stays).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${XDG_BIN_HOME:-$HOME/.local/bin}"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
if [ "${1:-}" = "--remove" ]; then
  rm -f "$BIN/histoguard" "$DATA/applications/histoguard.desktop" "$DATA/icons/hicolor/256x256/apps/histoguard.png"
  echo "HistoGuard removed from the menu and PATH ($HERE is left as it is)"
  exit 0
fi
mkdir -p "$BIN" "$DATA/applications" "$DATA/icons/hicolor/256x256/apps"
ln -sfn "$HERE/histoguard" "$BIN/histoguard"
cp "$HERE/_internal/resources/histoguard.png" "$DATA/icons/hicolor/256x256/apps/histoguard.png"
sed "s|^Exec=histoguard|Exec=$HERE/histoguard|" "$HERE/_internal/resources/histoguard.desktop" \
    > "$DATA/applications/histoguard.desktop"
echo "HistoGuard: $BIN/histoguard and a menu entry; check it with: histoguard --self-test"
case ":$PATH:" in *":$BIN:"*) ;; *) echo "(add $BIN to your PATH to type 'histoguard')" ;; esac
