"""What a model is, in one typed object: the metadata every checkpoint and every exported ONNX file carries.

A checkpoint stores ``ModelMeta.to_dict()`` beside its weights; an ONNX file stores each entry as JSON text in
its metadata properties (sealed by ``engine.deploy.integrity``). Both are read back with ``from_dict``, which
checks what HistoGuard needs (architecture, class names, input size) and keeps any entry it does not know,
so a file written by a newer version keeps its metadata when it is copied (INT8) or exported again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from engine.core.calibration import DEFAULT_REVIEW_BAND
from engine.core.errors import ModelError

FORMAT = "histoguard-checkpoint-1"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
INPUT = "RGB float32 NCHW in [0, 1]"


@dataclass(frozen=True)
class ModelMeta:
    arch: str
    classes: tuple[str, ...]  # the negative (healthy) class first, the positive (disease) class last
    image_size: int  # the square input in pixels
    positive_class: str = ""  # "" reads as classes[-1]
    mean: tuple[float, ...] = IMAGENET_MEAN  # the normalisation inside the model (its first layer)
    std: tuple[float, ...] = IMAGENET_STD
    training: dict = field(default_factory=dict)  # how it was trained: {"method": "clean" | "merged-fgsm" | ...}
    format: str = FORMAT
    model_name: str | None = None  # "Model A"
    split_hash: str | None = None  # the dataset split it was trained on (engine.data.split.split_hash)
    train_config: dict | None = None
    synthetic_data: bool = False  # trained on the synthetic demo data: never for diagnosis
    mpp: float | None = None  # microns per pixel of its input, when known (slides are tiled at this scale)
    eps: float | None = None  # the study's FGSM eps of the run it was exported from
    weights_sha256: str | None = None  # set by the ONNX export: which checkpoint weights it holds
    input: str | None = None  # what the ONNX graph takes
    quantization: dict | None = None  # an INT8 copy: how it was made
    # temperature scaling fitted on the validation split (engine.train.calibrate): {"temperature", "review_band",
    # "fitted_on", "n_images", "nll", "ece"}; an exported file's 'probabilities' output is already calibrated
    calibration: dict | None = None
    # stain normalisation applied to every input before the model (engine.data.stain_norm): {"method": "macenko",
    # "stain_matrix", "max_concentrations", ...} or {"method": "reinhard", "lab_mean", "lab_std", ...}; None: none
    stain_norm: dict | None = None
    histoguard_version: str | None = None
    extra: dict = field(default_factory=dict)  # entries this version does not know, kept as they are

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ModelError(f"a model needs two or more different class names, not {list(self.classes)}")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size <= 0:
            raise ModelError(f"a model's input size must be a positive whole number, not {self.image_size!r}")
        if not self.positive_class:
            object.__setattr__(self, "positive_class", self.classes[-1])
        if self.positive_class not in self.classes:
            raise ModelError(f"the positive class {self.positive_class!r} is not one of {list(self.classes)}")

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.positive_class)

    @property
    def negative_class(self) -> str:
        return next(c for c in self.classes if c != self.positive_class)

    @property
    def training_method(self) -> str | None:
        return self.training.get("method") if isinstance(self.training, dict) else None

    @property
    def quantized(self) -> bool:
        return self.quantization is not None

    @property
    def temperature(self) -> float:
        """The calibration temperature (1.0: the model's own softmax, not calibrated)."""
        return float((self.calibration or {}).get("temperature", 1.0))

    @property
    def review_band(self) -> tuple[float, float]:
        """The p(positive) band whose calls are flagged "uncertain", as calibration chose it (or the default)."""
        band = (self.calibration or {}).get("review_band") or DEFAULT_REVIEW_BAND
        return float(band[0]), float(band[1])

    def replace(self, **changes: Any) -> ModelMeta:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready entries: lists for tuples, unset optional entries left out, unknown ones kept."""
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict, source: str = "the model") -> ModelMeta:
        """Read metadata; ModelError naming ``source`` when what HistoGuard needs is missing or wrong."""
        if not isinstance(data, dict):
            raise ModelError(f"{source} has no HistoGuard metadata; export it with HistoGuard")
        missing = [k for k in ("arch", "classes", "image_size") if k not in data]
        if missing:
            raise ModelError(
                f"{source} has no HistoGuard metadata ({', '.join(missing)} missing); export it with HistoGuard"
            )
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        if data.get("synthetic"):  # the self-test's tiny model of earlier versions
            values.setdefault("synthetic_data", True)
        extra = {k: v for k, v in data.items() if k not in known and k != "synthetic"}
        try:
            return cls(**values, extra=extra)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source} has metadata HistoGuard cannot read ({exc})") from exc
