"""The captum attribution methods on a HistoGuard model (normalisation is its first layer, so every map is in the
pixel space of the [0, 1] image): ``TorchExplainer`` is an ``engine.deploy.explain_run.Explainer``.

- ``gradcam``: ``captum.attr.LayerGradCam`` on the architecture's last convolutional block (``layers.BLOCKS``; an
  earlier one where the last has fewer than 3 x 3 cells at the model's input size), ReLU of the weighted
  activations, upsampled (bilinear) to the image. Coarse by design: one value per 32 x 32 pixels for DenseNet121.
- ``ig``: ``captum.attr.IntegratedGradients`` from a blurred copy of the image (the occlusion map's Gaussian blur),
  |attribution| summed over the colour channels. A black baseline, the usual default, would give dark nuclei almost
  no attribution: IG scales each pixel by its distance from the baseline.
- ``smoothgrad``: ``captum.attr.NoiseTunnel`` over ``Saliency`` (|gradient|), Gaussian noise of ``noise`` (pixel
  units) drawn from ``seed``, summed over the colour channels.
- ``occlusion``: the torch-free ``engine.deploy.occlusion.occlusion_map`` with the torch model's probabilities.

Parameters are frozen (no weight gradients are computed; the model's ``.grad`` stays untouched) and the model stays
in eval mode. Probabilities use the model's calibration temperature, as the Diagnose page shows them.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency
from torch import nn

from engine.core.calibration import with_temperature
from engine.core.catalog import EXPLAIN_INFO
from engine.core.errors import ConfigError
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, check_cancel
from engine.deploy.occlusion import baseline_image, default_window, occlusion_map
from engine.explain.layers import last_conv_block, randomised_copy
from engine.models.device import resolve_device
from engine.models.tensors import to_tensor


class TorchExplainer:
    def __init__(
        self,
        model: nn.Module,
        meta: ModelMeta,
        method: str,
        *,
        record: dict | None = None,
        device: str = "auto",
        steps: int = 32,
        samples: int = 16,
        noise: float = 0.15,
        seed: int = 0,
        batch_size: int = 8,
        window: int | None = None,
        stride: int | None = None,
        baseline: str = "blur",
    ) -> None:
        if method not in EXPLAIN_INFO:
            raise ConfigError(f"unknown explanation method {method!r}; choose one of {', '.join(EXPLAIN_INFO)}")
        self.dev = resolve_device(device)
        self.model = model.to(self.dev).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.meta, self.method, self.record = meta, method, dict(record or {"model": meta.arch})
        self.steps, self.samples, self.noise, self.seed, self.batch_size = steps, samples, noise, seed, batch_size
        w, s = default_window(meta.image_size)
        self.window, self.stride, self.baseline = window or w, stride or s, baseline
        self._random: TorchExplainer | None = None
        self._block: tuple[str, tuple[int, int]] | None = None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(images, np.float32)).to(self.dev))
        return with_temperature(logits.float().cpu().numpy(), self.meta.temperature, logits=True).astype(np.float32)

    def attribution(self, image: np.ndarray, target: int, cancel: CancelToken | None = None) -> np.ndarray:
        check_cancel(cancel, "explanation")
        if self.method == "occlusion":
            return occlusion_map(
                self.probabilities, image, target, window=self.window, stride=self.stride, baseline=self.baseline,
                batch_size=self.batch_size * 2, cancel=cancel,
            )  # fmt: skip
        x = to_tensor(image[None], self.dev)
        if self.method == "gradcam":
            cam = LayerGradCam(self.model, self._layer()[1])
            a = cam.attribute(x, target=target, relu_attributions=True)
            a = LayerAttribution.interpolate(a, tuple(x.shape[2:]), interpolate_mode="bilinear")
            return a[0, 0].detach().float().cpu().numpy()
        if self.method == "ig":
            base = torch.from_numpy(baseline_image(image, "blur", self.window).transpose(2, 0, 1)[None].copy())
            a = IntegratedGradients(self.model).attribute(
                x, baselines=base.to(self.dev), target=target, n_steps=self.steps, internal_batch_size=self.batch_size
            )
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                a = NoiseTunnel(Saliency(self.model)).attribute(
                    x, nt_type="smoothgrad", nt_samples=self.samples, nt_samples_batch_size=self.batch_size,
                    stdevs=self.noise, target=target,
                )  # fmt: skip
        return a[0].detach().abs().sum(0).float().cpu().numpy()

    def _layer(self) -> tuple[str, nn.Module, tuple[int, int]]:
        """Grad-CAM's layer, found once (``layers.last_conv_block``)."""
        if self._block is None:
            name, _, cells = last_conv_block(self.model, self.meta.arch, self.meta.image_size)
            self._block = (name, cells)
        name, cells = self._block
        return name, self.model.get_submodule(name), cells

    def randomised(self) -> TorchExplainer:
        if self._random is None:
            twin = TorchExplainer(randomised_copy(self.model, self.seed), self.meta, self.method, record=self.record,
                                  device=str(self.dev))  # fmt: skip
            twin.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("model", "_random", "_block")})
            self._random = twin
        return self._random

    def settings(self) -> dict:
        common = {"randomisation": "convolutions and linear layers re-initialised at once", "seed": self.seed}
        if self.method == "gradcam":
            name, _, cells = self._layer()
            return {"layer": name, "cells": f"{cells[0]} x {cells[1]}", **common}
        if self.method == "ig":
            return {
                "steps": self.steps,
                "baseline": f"Gaussian blur, radius {max(1.0, self.window / 4):g} px",
                **common,
            }
        if self.method == "smoothgrad":
            return {"samples": self.samples, "noise_sd": self.noise, **common}
        return {"window": self.window, "stride": self.stride, "baseline": self.baseline, **common}
