"""``histoguard slides``: a cohort of slides in one command, resumable, on this machine or a Ray cluster."""

from __future__ import annotations

from pathlib import Path

from engine import api
from engine.cli.slide_cmd import add_tile_options
from engine.cli.text import aligned
from engine.slides.cohort import DEFAULT_TOP_K, CohortSettings

SHOWN = ("slide", "status", "tissue_tiles", "positive_fraction", "top_k_score", "uncertain_fraction")
ROBUST_SHOWN = ("median_flip_eps_255", "p10_flip_eps_255")


def add_cohort_command(sub) -> None:
    p = sub.add_parser(
        "slides",
        help="a cohort: every slide of files and folders into its own sub-folder, cohort.csv/html; resumable",
        description="Predict every slide (.svs, .ndpi, .mrxs, tiled TIFF, ...) of the given files and folders into "
        "its own sub-folder of --out and write cohort.csv and cohort.html after each slide. Run it again to go on "
        "after an interruption: finished slides made with the same model and settings are kept.",
    )
    p.add_argument("inputs", nargs="+", metavar="SLIDE_OR_FOLDER", help="slide files and folders (searched in depth)")
    p.add_argument("--model", required=True, help="an ONNX file exported by HistoGuard")
    p.add_argument("--out", required=True, metavar="DIR", help="cohort folder: one sub-folder per slide, cohort.csv")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, metavar="K",
                   help="slide score = mean of the K highest tile probabilities (default %(default)s)")  # fmt: skip
    p.add_argument("--model-mpp", type=float, default=None, help="microns per pixel of the model's training images")
    p.add_argument("--slide-mpp", type=float, default=None, metavar="MPP",
                   help="microns per level-0 pixel of every slide, over what the files record")  # fmt: skip
    p.add_argument("--min-tissue", type=float, default=0.5, help="keep tiles with at least this tissue fraction")
    add_tile_options(p)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    g = p.add_argument_group("robustness map (full edition)")
    g.add_argument("--robustness", choices=("none", "fgsm", "pgd"), default="none",
                   help="also map each tile's minimal flipping eps (the table: median, 10th percentile)")  # fmt: skip
    g.add_argument("--max-eps", type=int, default=16, metavar="K", help="search eps up to K/255 (default 16)")
    g.add_argument("--steps", type=int, default=10, help="PGD steps per attack (default 10)")
    g.add_argument("--robust-limit", type=int, default=None, metavar="N", help="attack only each slide's N top tiles")
    g = p.add_argument_group("cluster (pip install histoguard[cluster])")
    g.add_argument("--ray", metavar="local|ADDRESS", default=None,
                   help="one slide per Ray task: 'local' starts Ray here, HEAD:6379 joins a cluster (slides and --out "
                   "on a shared path)")  # fmt: skip
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="--ray local: CPUs (default all); an address: slides in flight")  # fmt: skip


def cmd_slides(a, progress) -> int:
    from engine.slides.cohort_table import cell

    settings = CohortSettings(
        model_mpp=a.model_mpp, slide_mpp=a.slide_mpp, min_tissue=a.min_tissue, overlap=a.overlap, tta=a.tta,
        top_k=a.top_k,
        robustness=None if a.robustness == "none" else a.robustness, max_eps=a.max_eps, steps=a.steps,
        robust_limit=a.robust_limit, batch_size=a.batch_size, device=a.device,
    )  # fmt: skip
    result = api.run_cohort(a.inputs, a.model, a.out, settings, ray=a.ray, workers=a.workers, on_progress=progress)
    progress.close()
    columns = SHOWN + (ROBUST_SHOWN if settings.robustness else ())
    rows = [list(columns)] + [[cell(r.get(c), c) or "-" for c in columns] for r in result["rows"]]
    print(aligned(rows, left=1))
    c = result["counts"]
    reused = sum(1 for s in result["slides"] if s.get("reused"))
    print(f"\n{c['done']} done ({reused} kept from an earlier run), {c['failed']} failed; score = mean of the top "
          f"{settings.top_k} tile probabilities of {result['positive'] or 'the positive class'}")  # fmt: skip
    if result.get("uncertain_note"):
        print(f"uncertain fraction {result['uncertain_note']}")
    for r in result["rows"]:
        if r["status"] == "failed":
            print(f"failed: {r['slide']}: {r['error']}")
    print(f"written: {Path(a.out) / 'cohort.csv'}, {Path(a.out) / 'cohort.html'} and one sub-folder per slide")
    return 0 if not c["failed"] else 1
