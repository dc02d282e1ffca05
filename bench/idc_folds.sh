#!/usr/bin/env bash
# Patient-level 5-fold cross-validation of the study on the real IDC patches in ../shared/data (CPU).
# Usage: bash bench/idc_folds.sh [OUT] [extra histoguard options]   (default runs/idc-folds)
# Lighter than bench/idc_experiment.sh per fold (6 epochs, no Model C, no minimal-eps search, no black-box
# attack) so that five folds fit in about half an hour on two cores; pass options to change that.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${HISTOGUARD_SHARED_DATA:-../shared/data}/idc_subset/MANIFEST.csv"
OUT="${1:-runs/idc-folds}"
shift || true
exec histoguard experiment --data "$DATA" --positive-class idc --arch densenet121 --image-size 48 \
    --epochs 6 --batch-size 32 --lr 1e-3 --patience 6 --weights none --eps 4/255 --device cpu \
    --folds 5 --defence none --min-eps-max 0 --blackbox-images 0 --out "$OUT" "$@"
