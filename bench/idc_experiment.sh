#!/usr/bin/env bash
# The study's workflow on the real IDC patches in ../shared/data (patient-level split, CPU).
# Usage: bash bench/idc_experiment.sh [OUT]   (default runs/idc; extra histoguard options may follow OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${HISTOGUARD_SHARED_DATA:-../shared/data}/idc_subset/MANIFEST.csv"
OUT="${1:-runs/idc}"
shift || true
exec histoguard experiment --data "$DATA" --positive-class idc --arch densenet121 --image-size 48 \
    --epochs 10 --batch-size 32 --lr 1e-3 --patience 6 --weights none --eps 4/255 --device cpu \
    --out "$OUT" "$@"
