"""The data model of a discovered dataset: one record per image, plus what was skipped and why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ImageRecord:
    """One image: where it is, its class, and the patient it comes from (the unit of splitting)."""

    path: Path
    label: str
    patient_id: str | None = None
    magnification: str | None = None
    tumor_type: str | None = None


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass
class Dataset:
    """Images found under ``root`` with their labels; ``classes[1]`` is the positive (disease) class."""

    root: Path
    kind: str  # "breakhis" | "class-folders" | "csv"
    records: list[ImageRecord]
    classes: tuple[str, str]
    skipped: list[Skipped] = field(default_factory=list)
    synthetic: bool = False

    @property
    def positive_class(self) -> str:
        return self.classes[1]

    def label_index(self, label: str) -> int:
        return self.classes.index(label)

    def labels(self) -> list[int]:
        return [self.label_index(r.label) for r in self.records]

    def summary(self) -> dict:
        """Counts per class, patient and magnification, and skipped files with reasons (JSON-ready)."""
        recs = self.records
        patients = {r.patient_id for r in recs if r.patient_id is not None}
        per_class_patients = {
            c: len({r.patient_id for r in recs if r.label == c and r.patient_id is not None}) for c in self.classes
        }
        return {
            "root": str(self.root),
            "kind": self.kind,
            "synthetic": self.synthetic,
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "n_images": len(recs),
            "per_class": {c: sum(r.label == c for r in recs) for c in self.classes},
            "n_patients": len(patients),
            "patients_per_class": per_class_patients,
            "per_magnification": dict(
                sorted(Counter(r.magnification or "unknown" for r in recs).items(), key=lambda kv: _mag_key(kv[0]))
            ),
            "per_tumor_type": dict(sorted(Counter(r.tumor_type for r in recs if r.tumor_type).items())),
            "images_per_patient": dict(sorted(Counter(r.patient_id for r in recs if r.patient_id).items())),
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
        }

    def subset(self, keep: list[int]) -> Dataset:
        return Dataset(
            self.root, self.kind, [self.records[i] for i in keep], self.classes, list(self.skipped), self.synthetic
        )


def _mag_key(mag: str) -> tuple[int, str]:
    """'40X' < '100X' < ... < 'unknown'."""
    digits = mag.rstrip("X")
    return (int(digits), mag) if digits.isdigit() else (1 << 30, mag)
