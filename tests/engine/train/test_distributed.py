"""DDP training in two CPU processes (gloo, started by torchrun): disjoint shards that cover each epoch, one
checkpoint writer whose files hold the weights every rank ends with, resume, and ``histoguard train``.

Run as a script (``torchrun ... test_distributed.py TMP``) this file is the worker of the ``job`` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import numpy as np
import pytest
import torch

from engine.train.distributed import SINGLE, DistContext, epoch_order, shard

ROOT = Path(__file__).resolve().parents[3]
N_TRAIN, EPOCHS = 24, 3


def test_shards_are_disjoint_equal_and_cover_the_order():
    order = np.random.default_rng(0).permutation(10)
    parts = [shard(order, DistContext(rank=r, world_size=3)) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]  # padded: every rank takes the same number of steps
    assert set(np.concatenate(parts)) == set(order)
    assert sorted(np.concatenate(parts).tolist()) == sorted(order.tolist() + order[:2].tolist())
    even = [shard(order, DistContext(rank=r, world_size=2)) for r in range(2)]
    assert not set(even[0]) & set(even[1]) and sorted(np.concatenate(even).tolist()) == list(range(10))
    assert len(shard(order[:1], DistContext(rank=1, world_size=4))) == 1  # fewer items than ranks


def test_one_process_keeps_todays_epoch_order():
    gen, order = epoch_order(20, 7, SINGLE)
    ref = torch.Generator().manual_seed(7)
    assert order.tolist() == torch.randperm(20, generator=ref).tolist()
    assert torch.equal(gen.get_state(), ref.get_state())  # augmentation continues the same stream
    _, a = epoch_order(20, 7, DistContext(rank=0, world_size=2))
    gen1, b = epoch_order(20, 7, DistContext(rank=1, world_size=2))
    assert sorted([*a, *b]) == list(range(20)) and not torch.equal(gen1.get_state(), ref.get_state())


def test_context_comes_from_torchruns_environment(monkeypatch):
    from engine.core.errors import ConfigError
    from engine.train.distributed import env_context, init_distributed

    monkeypatch.setenv("RANK", "3")  # without WORLD_SIZE > 1 someone else's variable: one process
    assert env_context() == SINGLE and init_distributed("cpu") == SINGLE
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env_context() == DistContext(rank=3, world_size=4, local_rank=1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="torchrun"):
        env_context()


def _cli_args(data: Path, out: Path) -> list[str]:
    args = ["-v", "train", "--data", str(data), "--out", str(out), "--arch", "small_cnn", "--image-size", "16"]
    args += ["--epochs", "2", "--batch-size", "4", "--weights", "none", "--device", "cpu"]
    args += ["--adversarial", "fgsm-rs", "--adv-steps", "2"]  # attacks through DDP; robust check on rank 0
    return args + ["--awp-gamma", "0.005", "--ema-decay", "0.9"]


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One torchrun job of two CPU processes (starting one costs ~5-15 s): the worker below."""
    from engine.data.demo import generate_demo_dataset

    tmp = tmp_path_factory.mktemp("ddp")
    generate_demo_dataset(tmp / "data", patients_per_class=4, images_per_patient=4, image_size=(32, 32))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(tmp)]
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=PIPE, stderr=PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:  # a rank waits in a collective the others never reach
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        out, err = proc.communicate()
        pytest.fail("the torchrun job hung:\n" + out[-3000:] + err[-3000:])
    assert proc.returncode == 0, out[-4000:] + err[-4000:]
    return tmp, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_two_ranks_disjoint_shards_same_weights_and_rank0_checkpoints(job):
    from engine.models.checkpoint import read_checkpoint

    tmp, _ = job
    ranks = [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for epoch in range(EPOCHS):  # (a) each epoch: the ranks' samples are disjoint and together all of them
        seen = [r["seen"][epoch] for r in ranks]
        assert len(seen[0]) == len(seen[1]) == N_TRAIN // 2
        assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(N_TRAIN))
    assert ranks[0]["seen"][0] != ranks[0]["seen"][1], "a new shuffle each epoch"
    for epoch in range(EPOCHS):  # (c) every epoch ends with the same weights and BatchNorm statistics
        assert _equal(ranks[0]["states"][epoch], ranks[1]["states"][epoch])
    last = read_checkpoint(tmp / "a" / "last.pt")
    best = read_checkpoint(tmp / "a" / "best.pt")
    assert last["world_size"] == 2 and last["epoch"] == EPOCHS
    assert _equal(last["state_dict"], ranks[1]["states"][-1])  # (b) rank 0's file holds what the ranks hold
    best_epoch = ranks[0]["best_epoch"]
    assert _equal(best["state_dict"], ranks[1]["states"][best_epoch - 1])
    assert _equal(ranks[0]["final"], best["state_dict"]) and _equal(ranks[1]["final"], best["state_dict"])
    assert ranks[0]["history"] == ranks[1]["history"] == last["history"]
    resumed = read_checkpoint(tmp / "b" / "last.pt")  # interrupted after epoch 2, resumed
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, EPOCHS + 1))
    assert _equal(resumed["state_dict"], last["state_dict"]), "a resumed run ends where an uninterrupted one does"
    assert not list(tmp.glob("*/.*.tmp")), "no half-written files"
    for a, b in zip(ranks[0]["levers"], ranks[1]["levers"], strict=True):  # with AWP, EMA and HED jitter on too
        assert _equal(a, b), "the ranks' EMA weights (and so their raw weights) stay equal"


def test_train_command_under_torchrun(job):
    from engine.core.errors import ConfigError
    from engine.models.checkpoint import read_checkpoint

    tmp, proc = job
    out = tmp / "run"
    assert proc.stdout.count("best epoch") == 1, proc.stdout  # printed by rank 0 only
    files = {p.name for p in out.iterdir()}
    assert {"best.pt", "last.pt", "split.csv", "train.json", "config.json", "log.txt"} <= files
    log = (out / "log.txt").read_text()
    assert log.count("model epoch 1/2") == 1 and log.count("model epoch 2/2") == 1, log
    assert "val_pgd_acc" in read_checkpoint(out / "last.pt")["history"][-1]
    assert {"ema", "awp"} <= set(json.loads((out / "train.json").read_text())["how_trained"])
    with pytest.raises(ConfigError, match="2 process"):  # one process may not continue a run of two
        _fit(out, {"seen": [], "states": [], "current": []})


def test_experiment_refuses_more_than_one_process(tmp_path, monkeypatch):
    from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
    from engine.core.errors import ConfigError
    from engine.workflows.experiment import run_experiment

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="engine train"):
        run_experiment(ExperimentConfig(DataConfig(demo=True), TrainConfig()), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---- the torchrun worker of test_fit_two_ranks_... -------------------------------------------------------------


def _data(n: int, seed: int):
    from engine.data.arrays import ArraySet

    rng = np.random.default_rng(seed)
    images = rng.integers(40, 120, size=(n, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1, 6:10, 6:10] = 230
    images[:, 0, 0, 0] = np.arange(n)  # a marker: which sample a training step received
    return ArraySet(images, labels)


def _fit(out: Path, record: dict, stop_at: int | None = None, resume: bool = True, **changes):
    from engine.core.config import TrainConfig
    from engine.models.checkpoint import make_metadata
    from engine.models.registry import create_model
    from engine.train import epoch, loop, session

    cfg = TrainConfig(
        arch="small_cnn", image_size=16, epochs=EPOCHS, batch_size=4, lr=5e-3, patience=10, weights="none", **changes
    )
    step, evaluate = epoch._step, session.evaluate_loss

    def step_spy(run, images, *args, **kwargs):
        record["current"].extend(int(v) for v in images[:, 0, 0, 0])
        return step(run, images, *args, **kwargs)

    def evaluate_spy(model, *args, **kwargs):  # every rank, once per epoch, right after training
        if len(record["seen"]) + 1 == stop_at:
            raise KeyboardInterrupt  # on both ranks at the same point: no collective is left waiting
        record["seen"].append(record.pop("current"))
        record["current"] = []
        record["states"].append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return evaluate(model, *args, **kwargs)

    epoch._step, session.evaluate_loss = step_spy, evaluate_spy
    try:
        torch.manual_seed(0)
        model = create_model("small_cnn")
        meta = make_metadata("small_cnn", ("benign", "malignant"), 16, {"method": "clean"})
        result = loop.fit(model, _data(N_TRAIN, 1), _data(11, 2), cfg, out_dir=out, name="T", metadata=meta)
    finally:
        epoch._step, session.evaluate_loss = step, evaluate
    return model, result


def _worker(tmp: Path) -> None:
    """Two fits (one interrupted and resumed), each rank's records dumped; then ``histoguard train``."""
    from engine.cli import main
    from engine.train.distributed import distributed_session

    torch.set_num_threads(1)
    with distributed_session("cpu") as ctx:
        record = {"seen": [], "states": [], "current": []}
        model, result = _fit(tmp / "a", record)
        final = model.state_dict()
        try:
            _fit(tmp / "b", {"seen": [], "states": [], "current": []}, stop_at=EPOCHS)
        except KeyboardInterrupt:
            _fit(tmp / "b", {"seen": [], "states": [], "current": []})
        levers = {"seen": [], "states": [], "current": []}  # AWP's gradients all-reduced, the EMA validated
        _fit(tmp / "c", levers, adversarial="fgsm-rs", adv_steps=2, awp_gamma=5e-3, ema_decay=0.9, hed_scale=0.1)
        dump = {"seen": record["seen"], "states": record["states"], "final": final, "levers": levers["states"]}
        torch.save(dump | {"best_epoch": result.best_epoch, "history": result.history}, tmp / f"rank{ctx.rank}.pt")
        if main(_cli_args(tmp / "data", tmp / "run")) != 0:
            raise SystemExit(f"rank {ctx.rank}: histoguard train failed")


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
