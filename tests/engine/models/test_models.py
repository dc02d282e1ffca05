"""Model registry, ImageNet weight loading (never downloaded) and safe checkpoints."""

from __future__ import annotations

import logging
import pickle
import re

import pytest
import torch
import torchvision
from torch import nn

from engine.core.errors import ModelError
from engine.models.checkpoint import load_checkpoint, make_metadata, read_checkpoint, save_checkpoint, weights_sha256
from engine.models.registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Classifier,
    Normalize,
    create_model,
    get_spec,
    list_models,
)
from engine.models.weights import _canonical_keys, hub_weights_path

ARCHS = ["densenet121", "resnet18", "mobilenet_v3_small", "small_cnn"]
CLASSES = ["benign", "malignant"]


def _meta(arch="small_cnn", size=32, **extra):
    return make_metadata(arch, CLASSES, size, {"method": "clean", "eps": None}, **extra)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """An empty torch hub cache: nothing from the real machine can leak into the test."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


def _without_batch_counters(state: dict) -> dict:
    """torchvision's published weight files predate BatchNorm's num_batches_tracked buffers."""
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


# --- registry -------------------------------------------------------------------------------------------


def test_registry_lists_all_architectures():
    assert list_models() == sorted(ARCHS)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_gives_two_finite_logits_per_image(arch):
    torch.manual_seed(0)
    model = create_model(arch).eval()
    assert isinstance(model, Classifier)
    first = next(iter(model.children()))
    assert isinstance(first, Normalize)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 2)
    assert torch.isfinite(out).all()


def test_normalize_is_imagenet_mean_std():
    model = create_model("small_cnn")
    x = torch.rand(2, 3, 8, 8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model.normalize(x), (x - mean) / std)
    # a mid-grey pixel of exactly the ImageNet mean becomes 0 in every channel
    grey = mean.expand(1, 3, 4, 4).clone()
    assert model.normalize(grey).abs().max() < 1e-6
    # mean/std are buffers (saved with the weights), not trainable parameters
    names = dict(model.named_buffers())
    assert "normalize.mean" in names and "normalize.std" in names
    assert not any(n.startswith("normalize.") for n, _ in model.named_parameters())


def test_classifier_applies_normalize_before_backbone():
    model = create_model("small_cnn").eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.backbone(model.normalize(x)))


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = create_model("small_cnn").train()
    x = torch.rand(4, 3, 32, 32)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_unknown_arch_lists_the_choices():
    with pytest.raises(ModelError) as err:
        create_model("vgg99")
    msg = str(err.value)
    assert "vgg99" in msg
    for name in ARCHS:
        assert name in msg
    with pytest.raises(ModelError):
        get_spec("")


@pytest.mark.parametrize("weights", [None, "none"])
def test_no_weights_means_no_file_lookup(weights, fake_hub):
    model = create_model("resnet18", weights=weights)
    assert model.backbone.fc.out_features == 2


# --- ImageNet weights -----------------------------------------------------------------------------------


def test_imagenet_weights_missing_names_file_and_folder(fake_hub):
    expected = hub_weights_path(get_spec("resnet18"))
    assert expected.parent == fake_hub / "checkpoints"
    assert expected.name.startswith("resnet18-") and expected.suffix == ".pth"
    with pytest.raises(ModelError) as err:
        create_model("resnet18", weights="imagenet")
    msg = str(err.value)
    assert expected.name in msg
    assert str(expected.parent) in msg


def test_torch_home_decides_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    path = hub_weights_path(get_spec("mobilenet_v3_small"))
    assert path.parent == tmp_path / "th" / "hub" / "checkpoints"
    with pytest.raises(ModelError, match=re.escape(path.name)):
        create_model("mobilenet_v3_small", weights="imagenet")


def test_small_cnn_has_no_imagenet_weights(fake_hub):
    assert hub_weights_path(get_spec("small_cnn")) is None
    with pytest.raises(ModelError, match="no ImageNet weights"):
        create_model("small_cnn", weights="imagenet")


def test_auto_without_file_trains_from_scratch_and_says_so(fake_hub, caplog):
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="engine.models.weights"):
        model = create_model("resnet18", weights="auto")
    assert model.backbone.fc.out_features == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("FROM SCRATCH" in r.getMessage() and "resnet18" in r.getMessage() for r in warnings)


@pytest.mark.parametrize(
    ("weights", "counters"),
    [("imagenet", False), ("auto", True)],
    ids=["imagenet-torchvision-file-format", "auto-with-batch-counters"],
)
def test_hub_file_loads_into_backbone_and_head_stays_new(fake_hub, caplog, weights, counters):
    torch.manual_seed(1)
    source = torchvision.models.resnet18(num_classes=1000).state_dict()
    if not counters:
        source = _without_batch_counters(source)
    path = hub_weights_path(get_spec("resnet18"))
    path.parent.mkdir(parents=True)
    torch.save(source, path)

    torch.manual_seed(2)  # a different init, so equality below means "loaded"
    with caplog.at_level(logging.WARNING, logger="engine.models.weights"):
        model = create_model("resnet18", weights=weights)
    assert not any("FROM SCRATCH" in r.getMessage() for r in caplog.records)
    got = model.backbone.state_dict()
    for key in ("conv1.weight", "layer1.0.bn1.running_mean", "layer4.1.conv2.weight", "bn1.bias"):
        torch.testing.assert_close(got[key], source[key], rtol=0, atol=0)
    assert got["fc.weight"].shape == (2, 512)
    assert not torch.equal(got["fc.weight"], source["fc.weight"][:2])


def test_weights_path_to_state_dict_file(tmp_path, fake_hub):
    torch.manual_seed(3)
    source = torchvision.models.mobilenet_v3_small(num_classes=1000).state_dict()
    file = tmp_path / "mnv3.pth"
    torch.save(_without_batch_counters(source), file)
    model = create_model("mobilenet_v3_small", weights=str(file))
    got = model.backbone.state_dict()
    torch.testing.assert_close(got["features.0.0.weight"], source["features.0.0.weight"], rtol=0, atol=0)
    assert got["classifier.3.weight"].shape[0] == 2


def test_whole_classifier_state_dict_loads_as_weights(tmp_path):
    torch.manual_seed(4)
    trained = create_model("small_cnn")
    file = tmp_path / "classifier.pth"
    torch.save(trained.state_dict(), file)  # keys start with "backbone." and "normalize."
    torch.manual_seed(5)
    model = create_model("small_cnn", weights=str(file))
    torch.testing.assert_close(model.backbone[0][0].weight, trained.backbone[0][0].weight, rtol=0, atol=0)


def test_weights_from_another_arch_are_refused(tmp_path):
    file = tmp_path / "small.pth"
    torch.save(create_model("small_cnn").backbone.state_dict(), file)
    with pytest.raises(ModelError, match="does not fit resnet18"):
        create_model("resnet18", weights=str(file))
    file2 = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), file2)
    with pytest.raises(ModelError, match="does not fit mobilenet_v3_small"):
        create_model("mobilenet_v3_small", weights=str(file2))


def test_missing_or_unreadable_weights_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        create_model("small_cnn", weights=str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a torch file")
    with pytest.raises(ModelError, match="cannot read weights file"):
        create_model("small_cnn", weights=str(junk))
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ModelError, match="does not hold a state dict"):
        create_model("small_cnn", weights=str(listed))


def test_canonical_keys_remaps_old_densenet_names_and_classifier_prefix():
    t = torch.zeros(1)
    old = {
        "features.denseblock1.denselayer1.norm.1.weight": t,
        "features.denseblock1.denselayer1.norm.1.running_var": t,
        "features.denseblock2.denselayer12.conv.2.weight": t,
        "features.denseblock4.denselayer16.norm.2.bias": t,
        "features.norm0.weight": t,
        "features.transition1.conv.weight": t,
        "backbone.classifier.weight": t,
    }
    assert set(_canonical_keys(old)) == {
        "features.denseblock1.denselayer1.norm1.weight",
        "features.denseblock1.denselayer1.norm1.running_var",
        "features.denseblock2.denselayer12.conv2.weight",
        "features.denseblock4.denselayer16.norm2.bias",
        "features.norm0.weight",
        "features.transition1.conv.weight",
        "classifier.weight",
    }
    assert _canonical_keys(old)["features.norm0.weight"] is t


def test_old_style_densenet_file_loads(tmp_path, fake_hub):
    """The published densenet121 file: 'norm.1'-style keys, no num_batches_tracked, a 1000-class head."""
    torch.manual_seed(6)
    source = torchvision.models.densenet121(num_classes=1000).state_dict()
    pattern = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.")
    old = {pattern.sub(r"\1.\2.", k): v for k, v in _without_batch_counters(source).items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    path = hub_weights_path(get_spec("densenet121"))
    path.parent.mkdir(parents=True)
    torch.save(old, path)
    model = create_model("densenet121", weights="imagenet")
    got = model.backbone.state_dict()
    for key in (
        "features.denseblock1.denselayer1.norm1.weight",
        "features.denseblock3.denselayer5.conv2.weight",
        "features.conv0.weight",
    ):
        torch.testing.assert_close(got[key], source[key], rtol=0, atol=0)
    assert got["classifier.weight"].shape == (2, 1024)


# --- checkpoints ----------------------------------------------------------------------------------------


def _trained_small(seed=0):
    torch.manual_seed(seed)
    model = create_model("small_cnn").train()
    with torch.no_grad():  # non-default BN statistics, so buffers are checked too
        model(torch.rand(8, 3, 16, 16))
    return model.eval()


def test_checkpoint_round_trip_keeps_weights_and_metadata(tmp_path):
    model = _trained_small()
    meta = _meta(split_hash="abc123", config={"lr": 0.001})
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(path, model, meta, epoch=3)
    loaded, loaded_meta = load_checkpoint(path)
    assert not loaded.training
    assert loaded_meta == meta
    assert (loaded_meta.arch, loaded_meta.classes, loaded_meta.image_size) == ("small_cnn", tuple(CLASSES), 32)
    assert loaded_meta.training == {"method": "clean", "eps": None} and loaded_meta.mean == meta.mean
    assert loaded_meta.positive_class == "malignant" and loaded_meta.extra == {"config": {"lr": 0.001}}
    ref, got = model.state_dict(), loaded.state_dict()
    assert ref.keys() == got.keys()
    for key in ref:
        assert torch.equal(ref[key], got[key]), key
    assert weights_sha256(loaded) == weights_sha256(model)
    assert read_checkpoint(path)["epoch"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp files left


def test_weights_sha256_follows_the_weights():
    a, b = _trained_small(0), create_model("small_cnn")
    assert weights_sha256(a) != weights_sha256(b)
    b.load_state_dict(a.state_dict())
    assert weights_sha256(a) == weights_sha256(b)
    assert re.fullmatch(r"[0-9a-f]{64}", weights_sha256(a))
    with torch.no_grad():
        b.backbone[-1].bias[0] += 1e-3
    assert weights_sha256(a) != weights_sha256(b)
    b.load_state_dict(a.state_dict())
    b.normalize.mean[0, 0, 0, 0] = 0.5  # buffers count too
    assert weights_sha256(a) != weights_sha256(b)


def test_save_refuses_incomplete_metadata(tmp_path):
    meta = _meta().replace(training={})
    with pytest.raises(ModelError, match="training"):
        save_checkpoint(tmp_path / "m.pt", create_model("small_cnn"), meta)
    assert not (tmp_path / "m.pt").exists()


class Payload:
    """Any class outside torch's allow-list: loading it would need arbitrary code."""

    def __init__(self, marker):
        self.marker = marker


class Evil:
    """Unpickling this creates ``marker`` (``open(marker, 'w')``): proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["custom-class", "reduce-payload"])
def test_checkpoint_with_pickled_objects_is_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    model = create_model("small_cnn")
    evil = Payload(str(marker)) if kind == "custom-class" else Evil(marker)
    path = tmp_path / "evil.pt"
    torch.save({"metadata": _meta().to_dict(), "state_dict": model.state_dict(), "evil": evil}, path)
    with pytest.raises(ModelError, match="refused") as refused:
        load_checkpoint(path)
    assert "evil.pt" in str(refused.value) and "weights_only" in str(refused.value)
    with pytest.raises(ModelError, match="refused"):
        read_checkpoint(path)
    assert not marker.exists()
    if kind == "reduce-payload":  # control: the payload is live, torch.load without weights_only runs it
        torch.load(path, weights_only=False)
        assert marker.exists()


def test_plain_pickle_payload_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"metadata": _meta().to_dict(), "state_dict": {}, "evil": Evil(marker)}, protocol=2)
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(ModelError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()
    # control: the payload is live, an unrestricted unpickler would have run it
    pickle.loads(data)
    assert marker.exists()


def test_checkpoint_without_metadata_is_refused(tmp_path):
    model = create_model("small_cnn")
    bare = tmp_path / "bare.pt"
    torch.save(model.state_dict(), bare)
    with pytest.raises(ModelError, match="no metadata"):
        load_checkpoint(bare)
    only_weights = tmp_path / "weights.pt"
    torch.save({"state_dict": model.state_dict()}, only_weights)
    with pytest.raises(ModelError, match="no metadata"):
        load_checkpoint(only_weights)
    partial = tmp_path / "partial.pt"
    meta = _meta().to_dict()
    del meta["image_size"]
    torch.save({"metadata": meta, "state_dict": model.state_dict()}, partial)
    with pytest.raises(ModelError, match="image_size"):
        load_checkpoint(partial)
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_whose_weights_do_not_match_its_arch(tmp_path):
    path = tmp_path / "lie.pt"
    torch.save(
        {"metadata": _meta(arch="resnet18").to_dict(), "state_dict": create_model("small_cnn").state_dict()}, path
    )
    with pytest.raises(ModelError, match="resnet18"):
        load_checkpoint(path)
