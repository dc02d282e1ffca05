"""Nothing lost: training killed with SIGKILL mid-epoch resumes from its last checkpoint and ends where an
uninterrupted run ends; a report killed while being written is the old or the new one, never half of one.

The kills are real (``os.kill(pid, SIGKILL)`` of a child process); the children are slowed down (a sleep per
training step, or per chunk of a report file) only so that the kill lands where it should, mid-epoch or
mid-write, on any machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
from engine.data.arrays import ArraySet
from engine.models.checkpoint import make_metadata, read_checkpoint
from engine.models.registry import create_model
from engine.runs.folder import RunFolder
from engine.runs.lock import LOCK_FILE
from engine.train import loop
from engine.train import session as session_module
from tests.conftest import toy_arrays

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")

EPOCHS = 4
TRAIN = ["--arch", "small_cnn", "--image-size", "16", "--epochs", str(EPOCHS), "--batch-size", "4"]
TRAIN += ["--weights", "none", "--device", "cpu"]

# `histoguard train` that prints "STEP <epoch>" after each training step and then sleeps 0.1 s, so the parent
# can kill it a few batches into an epoch
SLOW_TRAIN = """
import sys, time
import engine.train.epoch as epoch_module, engine.train.session as session
step, train_epoch, epoch = epoch_module._step, session.train_epoch, [0]
def slowed_step(*args, **kwargs):
    out = step(*args, **kwargs)
    print("STEP", epoch[0], flush=True)
    time.sleep(0.1)
    return out
def counted_epoch(run, n):
    epoch[0] = n
    return train_epoch(run, n)
epoch_module._step, session.train_epoch = slowed_step, counted_epoch
from engine.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def _watchdog(proc: subprocess.Popen, seconds: float):
    """Kill ``proc`` if the test is still waiting for it after ``seconds`` (its stdout then ends)."""
    timer = threading.Timer(seconds, proc.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _sigkill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "data"
    assert main(["demo-data", str(root), "--patients-per-class", "4", "--images-per-patient", "6"]) == 0
    return root


def _train(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "engine", "train", *args], env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_sigkill_mid_epoch_then_resume_ends_like_an_uninterrupted_run(demo_root, tmp_path):
    cut, straight = tmp_path / "cut", tmp_path / "straight"
    args = ["--data", str(demo_root), *TRAIN]
    err = tmp_path / "killed.stderr"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", SLOW_TRAIN, "train", *args, "--out", str(cut)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_env(),
        )
        steps = 0
        with _watchdog(proc, 180):
            for line in proc.stdout:
                if line.strip() == "STEP 2":
                    steps += 1
                    if steps == 3:  # three batches into epoch 2: epoch 1's checkpoint is written
                        break
        assert steps == 3, f"training ended before the kill: {err.read_text()[-3000:]}"
        _sigkill(proc)
    killed_after = read_checkpoint(cut / "last.pt")["epoch"]
    assert 1 <= killed_after < EPOCHS and not (cut / "train.json").exists()
    before = {name: (cut / name).read_bytes() for name in ("split.csv", "config.json")}

    _train(*args, "--out", str(cut), "--resume")
    _train(*args, "--out", str(straight))

    assert {name: (cut / name).read_bytes() for name in before} == before, "same split and config after resume"
    assert (straight / "split.csv").read_bytes() == before["split.csv"]
    log_txt = (cut / "log.txt").read_text()
    assert f"resuming after epoch {killed_after}" in log_txt
    assert log_txt.count(f"epoch {killed_after}/{EPOCHS}") == 1, "the resumed run did not redo finished epochs"
    resumed, reference = (json.loads((d / "train.json").read_text()) for d in (cut, straight))
    assert resumed["epochs_run"] == reference["epochs_run"] == EPOCHS
    assert resumed["best_epoch"] == reference["best_epoch"]
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_balanced_accuracy", "lr")
    assert [{k: r[k] for k in keys} for r in resumed["history"]] == [
        {k: r[k] for k in keys} for r in reference["history"]
    ]
    # training on the CPU is deterministic (per-epoch seeded order and augmentation, no dropout), so the
    # resumed weights are bit-identical to the uninterrupted run's
    for name in ("last.pt", "best.pt"):
        a, b = (read_checkpoint(d / name)["state_dict"] for d in (cut, straight))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_a_kill_between_last_and_best_checkpoint_is_repaired_on_resume(tmp_path, monkeypatch):
    """last.pt of the best epoch is written, then the process dies before best.pt: resume rebuilds best.pt."""
    cfg = TrainConfig(arch="small_cnn", image_size=16, epochs=2, batch_size=16, weights="none", device="cpu")
    x, y = toy_arrays(64, 16, seed=1)
    train, val = ArraySet(x[:48], y[:48]), ArraySet(x[48:], y[48:])
    meta = make_metadata(cfg.arch, ("benign", "malignant"), cfg.image_size, {"method": "clean"})
    save = session_module.save_checkpoint

    def dies_before_best_of_epoch_2(path, model, metadata, **state):
        if Path(path).name == "best.pt" and state.get("epoch") == 2:
            raise SystemExit("killed")
        save(path, model, metadata, **state)

    def fit(**kw):
        torch.manual_seed(0)
        model = create_model(cfg.arch)
        return loop.fit(model, train, val, cfg, out_dir=tmp_path, name="T", metadata=meta, **kw)

    monkeypatch.setattr(session_module, "save_checkpoint", dies_before_best_of_epoch_2)
    with pytest.raises(SystemExit):
        fit()
    monkeypatch.setattr(session_module, "save_checkpoint", save)
    last = read_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == last["best_epoch"] == 2, "epoch 2 was the best (ties go to the later epoch)"
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == 1, "the kill left best.pt one epoch behind"

    result = fit()
    best = read_checkpoint(tmp_path / "best.pt")
    assert result.best_epoch == best["epoch"] == 2
    assert all(torch.equal(best["state_dict"][k], v) for k, v in last["state_dict"].items())


# ---------------------------------------------------------------------------------------------------------
# report files: the real writer (engine.workflows.reports), killed halfway through a file

REPORT_CHILD = """
import itertools, json, os, re, sys, tempfile, time
from pathlib import Path
import engine.runs.folder as run_folder
from engine.workflows.reports import write_run_report
from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
from engine.runs.folder import RunFolder

class SlowHandle:
    # writes in chunks; halfway through a file it says MID <name> and pauses, so the parent can kill it there
    def __init__(self, handle, name):
        self.handle, self.name = handle, name
    def write(self, data):
        chunks = [data[i : i + 8192] for i in range(0, len(data), 8192)]
        for i, chunk in enumerate(chunks):
            self.handle.write(chunk)
            if i == len(chunks) // 2:
                self.handle.flush()
                print("MID", self.name, flush=True)
                time.sleep(0.2)
        return len(data)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)
    def __getattr__(self, name):
        return getattr(self.handle, name)

temp_names, real_mkstemp, real_fdopen = {}, tempfile.mkstemp, os.fdopen

def mkstemp(*args, **kwargs):  # remember which file each temp file will become
    fd, tmp = real_mkstemp(*args, **kwargs)
    temp_names[fd] = re.sub(r"^[.](.*)[.][^.]+[.]tmp$", r"\\1", Path(tmp).name)
    return fd, tmp

def fdopen(fd, *args, **kwargs):
    handle = real_fdopen(fd, *args, **kwargs)
    return SlowHandle(handle, temp_names.pop(fd)) if fd in temp_names else handle

def plain_write_all(files):  # the control: each file written in place, as a naive writer does
    for path, data in files.items():
        with SlowHandle(open(path, "wb"), Path(path).name) as handle:
            handle.write(data.encode() if isinstance(data, str) else data)

how, root = sys.argv[1], Path(sys.argv[2])
reports = json.loads((root / "reports.json").read_text())
for i, report in enumerate(reports):  # the two complete versions, written normally, to compare with
    write_run_report(RunFolder(root / f"ref{i}" / "run"), report)
run = RunFolder.prepare(root / "live" / "run", ExperimentConfig(DataConfig(data="x"), TrainConfig()))
if how == "atomic":
    tempfile.mkstemp, os.fdopen = mkstemp, fdopen
else:
    run_folder.write_all = plain_write_all
for i in itertools.count():
    write_run_report(run, reports[i % 2])
    print("WROTE", flush=True)
"""
CONFIG = ExperimentConfig(DataConfig(data="x"), TrainConfig())


def _evaluation(model: str, source: str | None, level: str, version: int) -> dict:
    cm = [[10 + version, 3], [2, 20 - version]]
    metrics = dict.fromkeys(("accuracy", "balanced_accuracy", "sensitivity", "specificity", "roc_auc", "f1"), 0.75)
    return {
        "model": model,
        "condition": "fgsm" if source else "clean",
        "attack_source": source,
        "eps": 4 / 255 if source else 0.0,
        "level": level,
        **metrics,
        "missed_cancer_rate": 0.25 + version / 100,
        "precision": 0.7,
        "recall": 0.75,
        "majority_baseline": 0.5,
        "confusion_matrix": cm,
        "n": 35,
    }


def _report(version: int) -> dict:
    """A report of a few hundred kB (report.json is written in ~50 chunks), different per version."""
    skipped = [{"path": f"v{version}/bad-{i}.png", "reason": "not an image " * 3} for i in range(4000)]
    return {
        "histoguard_version": "test",
        "synthetic_data": True,
        "dataset": {
            "root": "/data",
            "kind": "breakhis",
            "classes": ["benign", "malignant"],
            "positive_class": "malignant",
            "n_images": 48,
            "n_patients": 8,
            "per_class": {"benign": 24, "malignant": 24},
            "skipped": skipped,
        },
        "split": {
            "level": "patient",
            "seed": 0,
            "hash": "ab" * 32,
            "test": {"n_images": 12, "n_patients": 2, "per_class": {"benign": 6, "malignant": 6}},
        },
        "eps": 4 / 255,
        "evaluations": [
            _evaluation("A", s, lv, version) for s, lv in ((None, "image"), ("A", "image"), (None, "patient"))
        ],
        "sweep": [
            {"model": "A", "attack_source": "A", "eps": k / 255, "accuracy": 0.9 - 0.05 * k - 0.01 * version}
            for k in (0, 2, 8)
        ],
        "onnx": {},
        "training": {
            "A": {
                "how_trained": {"method": "clean"},
                "best_epoch": 1 + version,
                "epochs_run": 3,
                "best_val_balanced_accuracy": 0.9,
                "stopped_early": False,
            }
        },
    }


def _kill_mid_write(root: Path, how: str, *, kill_at: int, file: str | None = None) -> str:
    """Run the report child until it has written one complete report, then kill it halfway through the
    ``kill_at``-th file write after that (of ``file`` only, if given); return the name of that file."""
    root.mkdir(parents=True)
    (root / "reports.json").write_text(json.dumps([_report(0), _report(1)]))
    proc = subprocess.Popen(
        [sys.executable, "-c", REPORT_CHILD, how, str(root)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    complete, seen, name = False, 0, None
    with _watchdog(proc, 180):
        for line in proc.stdout:
            word, _, arg = line.strip().partition(" ")
            complete = complete or word == "WROTE"
            if complete and word == "MID" and file in (None, arg):
                seen += 1
                if seen == kill_at:
                    name = arg
                    break
    assert name is not None, "the report child ended before the kill"
    _sigkill(proc)
    return name


def _versions(root: Path) -> dict[str, list[bytes]]:
    refs = [root / f"ref{i}" / "run" for i in (0, 1)]
    return {p.name: [(r / p.name).read_bytes() for r in refs] for p in sorted(refs[0].iterdir())}


@pytest.mark.parametrize("seed", range(3))
def test_a_report_killed_mid_write_is_the_old_or_the_new_version(tmp_path, seed):
    root = tmp_path / "atomic"
    killed_in = _kill_mid_write(root, "atomic", kill_at=random.Random(seed).randint(1, 8))
    live = root / "live" / "run"
    versions = _versions(root)
    assert {"report.json", "report.md", "report.html", "sweep_accuracy.png"} <= set(versions)
    for name, (old, new) in versions.items():
        assert old != new or name.endswith(".png"), f"the two versions of {name} should differ"
        assert (live / name).read_bytes() in (old, new), f"{name} is half-written (the kill hit {killed_in})"
    json.loads((live / "report.json").read_text())
    temps = [p.name for p in live.iterdir() if p.name.startswith(f".{killed_in}.") and p.name.endswith(".tmp")]
    assert temps, "the kill should have left the temp file of the write it interrupted"

    kept = {p.name: p.read_bytes() for p in live.iterdir() if not p.name.startswith(".")}
    RunFolder.prepare(live, CONFIG, resume=True).release()  # the next open of the run folder
    left = sorted(p.name for p in live.iterdir() if p.name != LOCK_FILE)
    assert left == sorted(kept), "temp files are removed, nothing else"
    assert {name: (live / name).read_bytes() for name in kept} == kept


def test_control_the_same_kill_catches_a_plain_write_half_written(tmp_path):
    """Without the temp file + rename, the same kill leaves a truncated report.json: the test above can fail."""
    root = tmp_path / "plain"
    _kill_mid_write(root, "plain", kill_at=1, file="report.json")
    old, new = _versions(root)["report.json"]
    half = (root / "live" / "run" / "report.json").read_bytes()
    assert half not in (old, new) and 0 < len(half) < len(old)
    with pytest.raises(ValueError):
        json.loads(half)
