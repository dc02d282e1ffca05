"""Decoding image files of every common mode to 8-bit RGB squares, refusing bad files, and the decode cache."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core.errors import Cancelled, DecodeError
from engine.core.progress import CancelToken
from engine.data import cache as cache_mod
from engine.data import decode as decode_mod
from engine.data.cache import decode_dataset, default_cache_dir
from engine.data.decode import decode_image, load_rgb
from engine.data.discover import discover

WHITE = np.array([255, 255, 255], dtype=np.uint8)


def _rng_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# --- modes ------------------------------------------------------------------------------------------------------


def test_rgb_png_pixels_preserved(tmp_path):
    arr = _rng_rgb(8, 8)
    Image.fromarray(arr, "RGB").save(tmp_path / "rgb.png")
    out = decode_image(tmp_path / "rgb.png", 8)
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
    np.testing.assert_array_equal(out, arr)


def test_tiff_pixels_preserved(tmp_path):
    arr = _rng_rgb(6, 6, seed=1)
    Image.fromarray(arr, "RGB").save(tmp_path / "img.tif")
    np.testing.assert_array_equal(decode_image(tmp_path / "img.tif", 6), arr)


def test_grayscale_l(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    out = decode_image(tmp_path / "l.png", 8)
    assert out.shape == (8, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_one_bit(tmp_path):
    bits = (np.indices((8, 8)).sum(axis=0) % 2).astype(bool)
    img = Image.fromarray(bits)
    assert img.mode == "1"
    img.save(tmp_path / "bw.png")
    out = decode_image(tmp_path / "bw.png", 8)
    expected = np.where(bits, 255, 0).astype(np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


def _palette_image() -> tuple[Image.Image, np.ndarray]:
    colours = np.array([[10, 20, 30], [200, 50, 60], [0, 255, 0], [90, 90, 250]], dtype=np.uint8)
    idx = (np.arange(16).reshape(4, 4) % 4).astype(np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette(colours.flatten().tolist() + [0] * (768 - colours.size))
    return img, colours[idx]


def test_palette_without_transparency(tmp_path):
    img, expected = _palette_image()
    img.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(decode_image(tmp_path / "p.png", 4), expected)


def test_palette_with_transparency(tmp_path):
    img, expected = _palette_image()
    img.save(tmp_path / "pt.png", transparency=1)  # palette index 1 is transparent
    with Image.open(tmp_path / "pt.png") as reopened:
        assert reopened.mode == "P" and "transparency" in reopened.info
    out = decode_image(tmp_path / "pt.png", 4)
    idx = np.arange(16).reshape(4, 4) % 4
    np.testing.assert_array_equal(out[idx == 1], np.broadcast_to(WHITE, out[idx == 1].shape))
    np.testing.assert_array_equal(out[idx != 1], expected[idx != 1])


def test_rgba_transparent_becomes_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (30, 60, 90)
    rgba[0, :, 3] = 0  # fully transparent row (its colour must not leak through)
    rgba[1, :, 3] = 255  # opaque
    rgba[2:, :, 3] = 128  # half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = decode_image(tmp_path / "rgba.png", 4).astype(int)
    assert (out[0] == 255).all()
    assert (out[1] == (30, 60, 90)).all()
    expected_half = np.round(np.array([30, 60, 90]) * 128 / 255 + 255 * (1 - 128 / 255))
    assert np.abs(out[2:] - expected_half).max() <= 1


def test_la_alpha_composited_on_white(tmp_path):
    la = np.zeros((2, 4, 2), dtype=np.uint8)
    la[..., 0] = 40
    la[0, :, 1] = 0
    la[1, :, 1] = 255
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    with Image.open(tmp_path / "la.png") as reopened:
        assert reopened.mode == "LA"
    out = decode_image(tmp_path / "la.png", 2)  # centre 2x2 crop: one transparent row, one opaque row
    assert (out[0] == 255).all()
    assert (out[1] == 40).all()


def test_cmyk_jpeg(tmp_path):
    img = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # white
    img.paste((0, 255, 255, 0), (0, 8, 16, 16))  # red in the bottom half
    img.save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as reopened:
        assert reopened.mode == "CMYK"
    out = decode_image(tmp_path / "cmyk.jpg", 16).astype(int)
    assert np.abs(out[:6] - 255).max() <= 8
    assert np.abs(out[10:] - (255, 0, 0)).max() <= 12


def test_16_bit_grayscale_png(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as reopened:
        assert reopened.mode == "I;16"
    out = decode_image(tmp_path / "g16.png", 4)
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_16_bit_tiff(tmp_path):
    values = np.full((4, 4), 65535, dtype=np.uint16)
    values[:2] = 16384
    Image.fromarray(values).save(tmp_path / "g16.tif")
    out = decode_image(tmp_path / "g16.tif", 4)
    assert (out[:2] == 64).all() and (out[2:] == 255).all()


# --- geometry ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transpose", [False, True])
def test_non_square_is_resized_on_the_short_side_and_centre_cropped(tmp_path, transpose):
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :10] = (255, 0, 0)  # left quarter red
    arr[:, 10:30] = (0, 255, 0)  # middle half green
    arr[:, 30:] = (0, 0, 255)  # right quarter blue
    if transpose:
        arr = arr.transpose(1, 0, 2).copy()
    Image.fromarray(arr).save(tmp_path / "wide.png")
    out = decode_image(tmp_path / "wide.png", 10)
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    centre = out[2:8, 2:8]
    # 40x20 -> 20x10, crop columns 5..14 (rows for the tall image): only the green middle survives
    assert (centre[..., 1] > 240).all() and (centre[..., 0] < 15).all() and (centre[..., 2] < 15).all()


def test_small_image_is_upscaled(tmp_path):
    Image.new("RGB", (3, 5), (12, 34, 56)).save(tmp_path / "tiny.png")
    out = decode_image(tmp_path / "tiny.png", 16)
    assert out.shape == (16, 16, 3)
    assert (out == (12, 34, 56)).all()


# --- refusals ---------------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 16)) + _chunk(b"IEND", b"")
    )


def _assert_decode_error(path: Path, *words: str) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_image(path, 8)
    msg = str(info.value)
    assert path.name in msg
    for w in words:
        assert w in msg
    return info.value


def test_truncated_png(tmp_path):
    path = tmp_path / "truncated.png"
    Image.fromarray(_rng_rgb(64, 64)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_decode_error(path)


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    _assert_decode_error(path, "not an image")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    _assert_decode_error(path)


def test_missing_file(tmp_path):
    _assert_decode_error(tmp_path / "gone.png")


@pytest.mark.parametrize("side", [100_000, 12_000])
def test_huge_header_is_refused_before_decoding(tmp_path, side):
    path = tmp_path / f"bomb{side}.png"
    path.write_bytes(_png_header_only(side, side))
    _assert_decode_error(path)


def test_max_pixels_limit_is_honoured(tmp_path, monkeypatch):
    path = tmp_path / "twenty.png"
    Image.new("RGB", (20, 20), (1, 2, 3)).save(path)
    assert decode_image(path, 4).shape == (4, 4, 3)
    monkeypatch.setattr(decode_mod, "MAX_PIXELS", 399)
    err = _assert_decode_error(path, "20x20", "too large")
    assert "399" in str(err)
    # an explicit limit wins over the module default
    assert load_rgb(path, max_pixels=400).size == (20, 20)


def test_header_claiming_a_too_large_image_is_refused_by_max_pixels(tmp_path, monkeypatch):
    path = tmp_path / "claims.png"
    path.write_bytes(_png_header_only(3000, 3000))  # 9 Mpx header, a few bytes of data
    monkeypatch.setattr(decode_mod, "MAX_PIXELS", 1_000_000)
    _assert_decode_error(path, "3000x3000", "too large")


# --- decode_dataset and its cache ------------------------------------------------------------------------------


COLOURS = {"a/a0.png": (10, 0, 0), "a/a1.png": (20, 0, 0), "b/b0.png": (0, 30, 0), "b/b1.png": (0, 40, 0)}


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "data"
    for rel, colour in COLOURS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 10), colour).save(root / rel)
    (root / "a" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def _check_result(result, n_expected: int):
    ds = result.dataset
    assert len(ds.records) == n_expected == len(result.images) == len(result.labels)
    assert result.images.shape[1:] == (8, 8, 3) and result.images.dtype == np.uint8
    for rec, img, label in zip(ds.records, result.images, result.labels):
        assert label == ds.classes.index(rec.label)
        rel = rec.path.relative_to(ds.root).as_posix()
        assert (np.asarray(img) == COLOURS[rel]).all(), rel


def test_decode_dataset_drops_corrupt_files(folder, tmp_path):
    ds = discover(folder, positive_class="b")
    assert len(ds.records) == 5
    result = decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    _check_result(result, 4)
    assert [s.path.name for s in result.dataset.skipped] == ["corrupt.png"]
    assert "corrupt.png" in result.dataset.skipped[0].reason
    assert ds.skipped == []  # the input dataset is not changed
    assert result.labels.dtype == np.int64


def test_decode_dataset_second_call_uses_the_cache(folder, tmp_path, monkeypatch):
    ds = discover(folder, positive_class="b")
    first = decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    npy = list((tmp_path / "cache").glob("*.npy"))
    assert len(npy) == 1
    stamp = npy[0].stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("decode_image called although the cache is valid")

    monkeypatch.setattr(cache_mod, "decode_image", boom)
    second = decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    _check_result(second, 4)
    np.testing.assert_array_equal(np.asarray(second.images), np.asarray(first.images))
    assert [s.path.name for s in second.dataset.skipped] == ["corrupt.png"]
    assert list((tmp_path / "cache").glob("*.npy")) == npy and npy[0].stat().st_mtime_ns == stamp


def test_other_size_is_another_cache(folder, tmp_path):
    ds = discover(folder, positive_class="b")
    decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=1)
    other = decode_dataset(ds, 6, cache_dir=tmp_path / "cache", workers=1)
    assert other.images.shape == (4, 6, 6, 3)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def _counting(monkeypatch) -> list[Path]:
    calls: list[Path] = []
    real = cache_mod.decode_image

    def counting(path, size):
        calls.append(Path(path))
        return real(path, size)

    monkeypatch.setattr(cache_mod, "decode_image", counting)
    return calls


def test_changed_file_invalidates_the_cache(folder, tmp_path, monkeypatch):
    ds = discover(folder, positive_class="b")
    decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    calls = _counting(monkeypatch)
    Image.new("RGB", (14, 14), (0, 99, 0)).save(folder / "b" / "b1.png")  # new content and size
    result = decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    assert len(calls) == 5
    b1 = [r.path.name for r in result.dataset.records].index("b1.png")
    assert (np.asarray(result.images[b1]) == (0, 99, 0)).all()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_touched_file_invalidates_the_cache(folder, tmp_path, monkeypatch):
    ds = discover(folder, positive_class="b")
    decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    calls = _counting(monkeypatch)
    path = folder / "a" / "a0.png"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same bytes, new mtime
    decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    assert len(calls) == 5


def test_unreadable_cache_is_rebuilt(folder, tmp_path, monkeypatch):
    ds = discover(folder, positive_class="b")
    decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    (npy,) = (tmp_path / "cache").glob("*.npy")
    npy.write_bytes(b"not numpy")
    calls = _counting(monkeypatch)
    _check_result(decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2), 4)
    assert len(calls) == 5


def test_default_cache_dir_from_env(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HISTOGUARD_CACHE_DIR", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    ds = discover(folder, positive_class="b")
    decode_dataset(ds, 8, workers=1)
    assert len(list((tmp_path / "envcache").glob("*.npy"))) == 1
    assert len(list((tmp_path / "envcache").glob("*.json"))) == 1


def test_file_deleted_after_discovery_is_skipped(folder, tmp_path):
    ds = discover(folder, positive_class="b")
    (folder / "a" / "corrupt.png").unlink()
    result = decode_dataset(ds, 8, cache_dir=tmp_path / "cache", workers=2)
    _check_result(result, 4)
    assert [s.path.name for s in result.dataset.skipped] == ["corrupt.png"]


def test_progress_and_cancel(folder, tmp_path):
    ds = discover(folder, positive_class="b")
    events = []
    decode_dataset(ds, 8, cache_dir=tmp_path / "c1", workers=1, on_progress=events.append)
    assert events and events[-1].stage == "decode" and events[-1].done == events[-1].total == 5
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        decode_dataset(ds, 8, cache_dir=tmp_path / "c2", workers=1, cancel=token)
    assert not list((tmp_path / "c2").glob("*.npy"))  # a cancelled decode leaves no cache
