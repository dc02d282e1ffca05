"""Where Grad-CAM looks in each architecture, and the randomised copy of a model for the sanity check."""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from engine.core.errors import ModelError

log = logging.getLogger(__name__)
# Grad-CAM's layer of each registry architecture (engine.models.registry), inside the Classifier: the last
# convolutional block first, then earlier ones for small inputs, where the last block's map has too few cells (a
# DenseNet121 at 48 px ends on 1 x 1: a flat map that says nothing about where)
BLOCKS = {
    "densenet121": ("backbone.features", "backbone.features.denseblock3", "backbone.features.denseblock2"),
    "resnet18": ("backbone.layer4", "backbone.layer3", "backbone.layer2"),
    "mobilenet_v3_small": ("backbone.features", "backbone.features.8", "backbone.features.3"),
    "small_cnn": ("backbone.2", "backbone.1"),  # conv-bn-relu-pool blocks: 1/8 and 1/4 of the input
}
MIN_CELLS = 3  # the map must have at least 3 x 3 cells


def last_conv_block(model: nn.Module, arch: str | None, image_size: int) -> tuple[str, nn.Module, tuple[int, int]]:
    """(name, module, cells) of Grad-CAM's layer: the last block of ``arch`` whose output has at least ``MIN_CELLS``
    a side at ``image_size`` (the earliest candidate when none has), else the model's last Conv2d."""
    names = [n for n in BLOCKS.get(arch or "", ()) if _has(model, n)]
    if not names:
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ModelError(f"the {arch or 'given'} model has no convolution: Grad-CAM needs one; use occlusion")
        names = convs[-1:]
    cells = _output_cells(model, names, image_size)
    chosen = next((n for n in names if min(cells[n]) >= MIN_CELLS), names[-1])
    if chosen != names[0]:
        log.info("Grad-CAM on %s (%d x %d cells): %s has only %s at %d px", chosen, *cells[chosen], names[0],
                 "x".join(map(str, cells[names[0]])), image_size)  # fmt: skip
    return chosen, model.get_submodule(chosen), cells[chosen]


def _has(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


def _output_cells(model: nn.Module, names: list[str], image_size: int) -> dict[str, tuple[int, int]]:
    """The spatial size of each named module's output for one ``image_size`` image (one forward pass, hooked)."""
    cells, hooks = {}, []
    for name in names:

        def hook(_m, _inputs, out, name=name):
            cells[name] = tuple(int(s) for s in out.shape[-2:])

        hooks.append(model.get_submodule(name).register_forward_hook(hook))
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        for h in hooks:
            h.remove()
    return cells


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every convolution and fully connected layer re-initialised (their own
    ``reset_parameters``, seeded), all at once (Adebayo et al. 2018's full randomisation); batch-norm statistics and
    the normalisation layer stay as they were."""
    twin = copy.deepcopy(model).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in twin.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.reset_parameters()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin
