"""The full edition's attribution maps (captum: Grad-CAM, Integrated Gradients, SmoothGrad; and occlusion with the
torch model) on a small_cnn trained for a few steps on images whose class is a bright square's presence, anywhere in
the image: every map has the image's size, is deterministic, is stronger on the square than on the background, and
changes when the model's weights are randomised (Adebayo et al. 2018) far more than when it is computed again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.core.errors import ConfigError
from engine.core.metadata import ModelMeta
from engine.deploy.explain_run import explain_image
from engine.deploy.saliency import SANITY_THRESHOLD, spearman
from engine.explain import TorchExplainer, last_conv_block, randomised_copy
from engine.models.registry import create_model

SIZE, SIDE = 32, 10
METHODS = ("gradcam", "ig", "smoothgrad", "occlusion")
# how many times stronger the map is on the square than on the background, at least (measured: Grad-CAM 3.7-4.7,
# IG 3.4-4.4, SmoothGrad 1.2-1.6: |gradient| is spread over the whole image, occlusion 13-25)
CONTRAST = {"gradcam": 2.0, "ig": 2.0, "smoothgrad": 1.1, "occlusion": 5.0}
META = ModelMeta(arch="small_cnn", classes=("benign", "malignant"), image_size=SIZE)


def square_images(n: int, seed: int):
    """Noise with a bright SIDE x SIDE square at a random place in every odd image (class 1); the squares' corners."""
    rng = np.random.default_rng(seed)
    images = rng.integers(60, 140, (n, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    corners = rng.integers(0, SIZE - SIDE, (n, 2))
    for image, (top, left), y in zip(images, corners, labels):
        if y:
            image[top : top + SIDE, left : left + SIDE] = 235
    return images, labels, corners


def train_square_model() -> nn.Module:
    """small_cnn after 3 epochs of 512 images (under a second): it finds the square."""
    images, labels, _ = square_images(512, seed=0)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(labels)
    torch.manual_seed(0)
    model = create_model("small_cnn")
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for _ in range(3):
        for i in range(0, len(x), 32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32]).backward()
            opt.step()
    opt.zero_grad()  # no .grad left: the maps must not leave any either
    return model.eval()


@pytest.fixture(scope="module")
def square_model() -> nn.Module:
    return train_square_model()


@pytest.fixture(scope="module")
def malignant():
    """Four test images with a square, and each square's mask."""
    images, labels, corners = square_images(8, seed=1)
    masks = []
    for top, left in corners[labels == 1]:
        mask = np.zeros((SIZE, SIZE), bool)
        mask[top : top + SIDE, left : left + SIDE] = True
        masks.append(mask)
    return images[labels == 1], masks


def test_the_toy_model_learned_the_square(square_model):
    images, labels, _ = square_images(64, seed=2)
    with torch.no_grad():
        calls = square_model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).argmax(1).numpy()
    assert (calls == labels).mean() >= 0.95


@pytest.mark.parametrize("method", METHODS)
def test_maps_have_the_images_size_are_deterministic_and_find_the_square(square_model, malignant, method):
    explainer = TorchExplainer(square_model, META, method, device="cpu")
    ratios = []
    for image, mask in zip(*malignant):
        r = explain_image(explainer, image, sanity=False)
        again = explain_image(explainer, image, sanity=False)
        assert r["map"].shape == (SIZE, SIZE) and r["map"].dtype == np.float32
        assert np.array_equal(r["map"], again["map"])
        assert r["predicted"] == r["target"] == "malignant"
        positive = np.clip(r["map"], 0, None)
        ratios.append(positive[mask].mean() / max(positive[~mask].mean(), 1e-12))
    assert min(ratios) > CONTRAST[method], ratios  # the square holds more of the map than the background
    assert all(p.grad is None for p in square_model.parameters()) and not square_model.training


@pytest.mark.parametrize("method", METHODS)
def test_a_randomised_model_gives_a_different_map(square_model, malignant, method):
    """Adebayo et al.'s check: the rank correlation with the randomised model's map stays well below a repeat's (1,
    or, for SmoothGrad, a repeat with other noise: ~0.88 here); Grad-CAM, IG and occlusion pass the threshold on every
    image."""
    explainer = TorchExplainer(square_model, META, method, device="cpu")
    other_noise = TorchExplainer(square_model, META, method, device="cpu", seed=1)
    for image, _ in zip(*malignant):
        r = explain_image(explainer, image)
        repeat = spearman(r["map"], other_noise.attribution(image, 1))
        assert r["sanity"]["rank_correlation"] < repeat - 0.15, (r["sanity"], repeat)
        if method != "smoothgrad":  # SmoothGrad on this toy: ~0.6, the method's known weakness (README)
            assert r["sanity"]["passed"] and r["sanity"]["threshold"] == SANITY_THRESHOLD


def test_randomised_copy_redraws_every_weight_and_leaves_the_model(square_model):
    before = {k: v.clone() for k, v in square_model.state_dict().items()}
    twin, again = randomised_copy(square_model, seed=3), randomised_copy(square_model, seed=3)
    for (name, w), (_, w2) in zip(twin.state_dict().items(), again.state_dict().items()):
        assert torch.equal(w, w2)  # seeded
        if name.endswith("weight") and w.dim() > 1:
            assert not torch.equal(w, before[name])
    assert all(torch.equal(v, square_model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    ("arch", "size", "layer", "cells"),
    [
        ("densenet121", 224, "backbone.features", (7, 7)),
        ("densenet121", 64, "backbone.features.denseblock3", (4, 4)),
        ("densenet121", 48, "backbone.features.denseblock3", (3, 3)),
        ("resnet18", 96, "backbone.layer4", (3, 3)),
        ("resnet18", 64, "backbone.layer3", (4, 4)),
        ("mobilenet_v3_small", 64, "backbone.features.8", (4, 4)),
        ("small_cnn", 32, "backbone.2", (4, 4)),
        ("small_cnn", 16, "backbone.1", (4, 4)),
    ],
)
def test_gradcam_uses_the_last_block_with_at_least_3x3_cells(arch, size, layer, cells):
    name, module, got = last_conv_block(create_model(arch).eval(), arch, size)
    assert (name, got) == (layer, cells) and isinstance(module, nn.Module)


def test_unknown_architectures_use_their_last_convolution_and_methods_are_checked():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    assert last_conv_block(model, "mine", 8)[0] == "2"
    with pytest.raises(ConfigError, match="unknown explanation method"):
        TorchExplainer(create_model("small_cnn"), META, "lime", device="cpu")
