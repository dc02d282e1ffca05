"""Model integrity: hashes embedded in every exported ONNX file and recorded beside it, checked on every open.

A file cannot contain its own hash, so there are two layers:

* embedded, in the ONNX metadata: ``graph_sha256`` over every part of the file except its metadata (graph,
  weights, opsets) and ``metadata_sha256`` over the other metadata entries (classes, input size, training).
  They catch corruption and edits of a file that travels alone.
* recorded, beside the file: the whole file's sha256 in ``<name>.onnx.sha256`` and, in a run folder, in its
  ``SHA256SUMS`` (both ``sha256sum -c`` format). They catch any change, also one that recomputed the
  embedded hashes.

``graph_sha256`` hashes the file's own bytes (its top-level protobuf fields other than ``metadata_props``,
field 14, in file order), not a re-serialisation: protobuf promises no canonical encoding across versions,
and the bytes on disk are what onnxruntime runs. Loading reads the file once; the caller gives onnxruntime
those verified bytes, so the file cannot change between the check and the use.

Policy: a file without HistoGuard metadata (classes, input size) is refused (HistoGuard needs them to
predict), and so is a HistoGuard file without the embedded hashes (exported before they existed, or
stripped): it cannot be checked, so it is exported again. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from engine.core.errors import ExportError, ModelError, ModelIntegrityError, option
from engine.core.fileio import sha256_file, write_text
from engine.runs.folder import CONFIG

log = logging.getLogger(__name__)
GRAPH_KEY, META_KEY = "graph_sha256", "metadata_sha256"
HASH_KEYS = (GRAPH_KEY, META_KEY)
REQUIRED = ("arch", "classes", "image_size")
SUMS = "SHA256SUMS"
METADATA_FIELD = 14  # ModelProto.metadata_props
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
ADVICE = (
    "Do not use this file: take the original from its run folder, or export it again from its checkpoint "
    f"({option('export')}; for an INT8 copy, histoguard quantize)"
)


# --- the embedded hashes ----------------------------------------------------------------------------------
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        value, pos, shift = value | (byte & 0x7F) << shift, pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _top_level_fields(data: bytes):
    """(field number, start, end) of each top-level field of a serialised protobuf message."""
    pos, n = 0, len(data)
    while pos < n:
        start = pos
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire} at byte {start}")
        if pos > n:
            raise ValueError("truncated field")
        yield key >> 3, start, pos


def graph_sha256(data: bytes) -> str:
    """sha256 of a serialised ONNX model without its metadata: the graph, weights, opsets, as stored."""
    digest, view = hashlib.sha256(), memoryview(data)
    for field, start, end in _top_level_fields(data):
        if field != METADATA_FIELD:
            digest.update(view[start:end])
    return digest.hexdigest()


def metadata_sha256(props) -> str:
    """sha256 of the metadata entries (key -> JSON text) other than the two hashes, in key order."""
    pairs = sorted((p.key, p.value) for p in props if p.key not in HASH_KEYS)
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()


def seal(proto) -> bytes:
    """``proto`` serialised with its two embedded hashes (any earlier ones replaced)."""
    import onnx

    props = {p.key: p.value for p in proto.metadata_props if p.key not in HASH_KEYS}
    onnx.helper.set_model_props(proto, props)
    graph = graph_sha256(proto.SerializeToString())
    meta = metadata_sha256(proto.metadata_props)
    onnx.helper.set_model_props(proto, dict(props, **{GRAPH_KEY: json.dumps(graph), META_KEY: json.dumps(meta)}))
    data = proto.SerializeToString()
    if graph_sha256(data) != graph:
        raise ExportError("the ONNX graph serialised differently twice in a row; cannot record its hash")
    return data


# --- the recorded file hashes -----------------------------------------------------------------------------
def sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.sha256")


def record_model(path: str | Path) -> str:
    """Record ``path``'s sha256 in ``<name>.sha256`` and, in a run folder, in its SHA256SUMS; return it."""
    path = Path(path)
    digest = sha256_file(path)
    write_text(sidecar(path), f"{digest}  {path.name}\n")
    sums = path.parent / SUMS
    if (path.parent / CONFIG).is_file() or sums.is_file():  # a run folder, or one that keeps SHA256SUMS
        kept = [ln for ln in _read_lines(sums) if _entry(ln) is None or _entry(ln)[1] != path.name]
        write_text(sums, "".join(f"{ln}\n" for ln in kept) + f"{digest}  {path.name}\n")
    log.info("recorded sha256 %s of %s", digest, path)
    return digest


def _read_lines(path: Path) -> list[str]:
    try:
        return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"cannot read the recorded hashes in {path} ({exc}); {ADVICE}") from exc


def _entry(line: str) -> tuple[str, str] | None:
    match = _LINE.match(line)
    return (match.group(1).lower(), match.group(2).removeprefix("./")) if match else None


def recorded_hashes(path: str | Path) -> list[tuple[str, str]]:
    """(where, sha256) of every record of ``path``'s hash: its sidecar file and its folder's SHA256SUMS."""
    path = Path(path)
    out = []
    if sidecar(path).is_file():
        entries = [_entry(ln) for ln in _read_lines(sidecar(path))]
        if len(entries) != 1 or entries[0] is None:
            raise ModelIntegrityError(f"{sidecar(path)} is not one 'sha256  name' line; {ADVICE}")
        out.append((sidecar(path).name, entries[0][0]))
    for entry in map(_entry, _read_lines(path.parent / SUMS)):
        if entry and entry[1] == path.name:
            out.append((SUMS, entry[0]))
    return out


# --- the check on every open ------------------------------------------------------------------------------
def verify_model(path: str | Path) -> dict:
    """Check ``path`` (see ``load_verified``) and return what was checked."""
    return load_verified(path)[2]


def load_verified(path: str | Path) -> tuple[bytes, Any, dict]:
    """(bytes, ModelProto, info) of a HistoGuard ONNX file that matches its recorded and embedded hashes and
    whose metadata fits its graph; ModelIntegrityError (naming every mismatch) otherwise, ModelError for a
    missing, unreadable or non-HistoGuard file. info: path, sha256, graph_sha256, recorded_in, metadata."""
    path = Path(path)
    data = _read_model(path)
    digest = hashlib.sha256(data).hexdigest()
    records = recorded_hashes(path)
    wrong = [f"{where} records {rec[:16]}…" for where, rec in records if rec != digest]
    problems = [f"its sha256 is {digest[:16]}…, but {' and '.join(wrong)} (it changed after export)"] if wrong else []
    proto = _parse(path, data, problems)
    meta = decoded_metadata(proto.metadata_props)
    if not problems and not set(meta) & {*HASH_KEYS, *REQUIRED}:
        raise ModelError(
            f"{path} has no HistoGuard metadata (classes, input size, hashes): HistoGuard opens only the ONNX "
            "models it exported; export yours with 'histoguard export' from a HistoGuard checkpoint"
        )
    problems += _embedded_problems(data, proto, meta) + _consistency_problems(proto, meta)
    if problems:
        raise _refusal(path, problems)
    if not records:
        log.info("%s has no recorded sha256 beside it; its embedded hashes match", path.name)
    info = {"path": str(path), "sha256": digest, "graph_sha256": meta[GRAPH_KEY], "metadata": meta}
    return data, proto, dict(info, recorded_in=[where for where, _ in records])


def _refusal(path: Path, problems: list[str]) -> ModelIntegrityError:
    return ModelIntegrityError(f"refused to open the model {path}: {'; '.join(problems)}. {ADVICE}")


def decoded_metadata(props) -> dict:
    """The metadata entries with JSON values decoded (plain text kept as is)."""
    out = {}
    for p in props:
        try:
            out[p.key] = json.loads(p.value)
        except ValueError:
            out[p.key] = p.value
    return out


def _read_model(path: Path) -> bytes:
    if not path.is_file():
        raise ModelError(f"ONNX model {path} does not exist; choose an .onnx file exported by HistoGuard")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the model {path}: {exc.strerror}") from exc


def _parse(path: Path, data: bytes, problems: list[str]):
    import onnx

    try:
        proto = onnx.load_from_string(data)
        graph_sha256(data)  # the same walk the check does: a file it cannot walk is not one ONNX model
        return proto
    except Exception as exc:
        if problems:
            raise _refusal(path, problems) from exc
        raise ModelError(
            f"{path} is not a readable ONNX file ({exc}); choose an .onnx file exported by HistoGuard"
        ) from exc


def _embedded_problems(data: bytes, proto, meta: dict) -> list[str]:
    if GRAPH_KEY not in meta or META_KEY not in meta:
        return [
            f"it carries no {GRAPH_KEY}/{META_KEY} in its metadata (exported by a HistoGuard without integrity "
            "checks, or the hashes were removed), so its weights and metadata cannot be checked"
        ]
    out = []
    graph, metadata = graph_sha256(data), metadata_sha256(proto.metadata_props)
    if graph != meta[GRAPH_KEY]:
        out.append(
            f"its weights or graph changed ({GRAPH_KEY} recorded in its metadata {str(meta[GRAPH_KEY])[:16]}…, "
            f"now {graph[:16]}…)"
        )
    if metadata != meta[META_KEY]:
        out.append(
            f"its metadata changed (classes, input size or training; {META_KEY} recorded "
            f"{str(meta[META_KEY])[:16]}…, now {metadata[:16]}…)"
        )
    return out


def _consistency_problems(proto, meta: dict) -> list[str]:
    """The metadata must describe this graph: 3 x S x S input at its image_size, one output per class."""
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        return [f"its metadata lacks {missing}"]
    classes, size = meta["classes"], meta["image_size"]
    if not isinstance(classes, list) or len(set(map(str, classes))) != len(classes) or len(classes) < 2:
        return [f"its classes {classes!r} are not a list of 2 or more different names"]
    if not isinstance(size, int) or size <= 0:
        return [f"its image_size {size!r} is not a positive whole number"]
    out = []
    if "positive_class" in meta and meta["positive_class"] not in classes:
        out.append(f"its positive class {meta['positive_class']!r} is not one of its classes {classes}")
    dims = _dims(proto.graph.input[0]) if len(proto.graph.input) else []
    if len(dims) != 4 or dims[1] not in (None, 3) or any(d not in (None, size) for d in dims[2:]):
        out.append(f"its input has shape {dims}, but its metadata says 3 x {size} x {size} images")
    for output in proto.graph.output:
        if _dims(output)[-1:] not in ([], [None], [len(classes)]):
            out.append(f"its output {output.name!r} has {_dims(output)[-1]} values, but it has {len(classes)} classes")
    if "probabilities" not in [o.name for o in proto.graph.output]:
        out.append("it has no 'probabilities' output")
    return out


def _dims(value_info) -> list[int | None]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
