"""Model registry and factory: ``create_model(name, ...)`` builds a 2-class classifier that takes RGB in [0,1].

Mean/std normalisation is the model's first layer, so attacks, training, evaluation and the exported ONNX
file all work in pixel space.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from engine.core.errors import ModelError
from engine.core.metadata import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)


class Normalize(nn.Module):
    """(x - mean) / std per channel, with mean/std stored as buffers (they travel with the weights)."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """``Normalize`` followed by a backbone whose last layer has ``num_classes`` outputs (logits)."""

    def __init__(self, backbone: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[[int], nn.Module]  # num_classes -> backbone with a fresh head
    torchvision_name: str | None  # for ImageNet weights; None for models without them
    head: str | None  # attribute path of the final layer (ImageNet weights skip it)
    description: str


def _densenet121(num_classes: int) -> nn.Module:
    from torchvision.models import densenet121

    return densenet121(weights=None, num_classes=num_classes)


def _resnet18(num_classes: int) -> nn.Module:
    from torchvision.models import resnet18

    return resnet18(weights=None, num_classes=num_classes)


def _mobilenet_v3_small(num_classes: int) -> nn.Module:
    from torchvision.models import mobilenet_v3_small

    return mobilenet_v3_small(weights=None, num_classes=num_classes)


def _small_cnn(num_classes: int) -> nn.Module:
    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)
        )

    return nn.Sequential(
        block(3, 16), block(16, 32), block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "densenet121",
            _densenet121,
            "DenseNet121_Weights",
            "classifier",
            "DenseNet121 (the study's model, 8.0M parameters)",
        ),
        ModelSpec("resnet18", _resnet18, "ResNet18_Weights", "fc", "ResNet18 (11.2M parameters, fast on CPU)"),
        ModelSpec(
            "mobilenet_v3_small",
            _mobilenet_v3_small,
            "MobileNet_V3_Small_Weights",
            "classifier.3",
            "MobileNetV3-Small (1.5M parameters, fastest on CPU)",
        ),
        ModelSpec("small_cnn", _small_cnn, None, None, "3-layer CNN for tests and smoke runs (no ImageNet weights)"),
    )
}


def list_models() -> list[str]:
    return sorted(MODELS)


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown architecture {name!r}; choose one of {', '.join(list_models())}") from None


def create_model(name: str, num_classes: int = 2, weights: str | None = None) -> Classifier:
    """Build ``name`` with a ``num_classes`` head; ``weights`` is 'imagenet', 'auto', a file path or None."""
    from engine.models.weights import load_pretrained

    spec = get_spec(name)
    backbone = spec.build(num_classes)
    if weights not in (None, "none"):
        load_pretrained(backbone, spec, weights)
    return Classifier(backbone)
