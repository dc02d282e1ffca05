"""Attribution maps of the torch model (full edition), through captum: Grad-CAM on the last convolutional block,
Integrated Gradients and SmoothGrad on the input, and occlusion with the torch model. ``TorchExplainer`` plugs into
``engine.deploy.explain_run`` (the writer, the sanity check), which the ONNX occlusion map shares."""

from engine.explain.captum_maps import TorchExplainer
from engine.explain.layers import last_conv_block, randomised_copy

__all__ = ["TorchExplainer", "last_conv_block", "randomised_copy"]
