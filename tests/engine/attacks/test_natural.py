"""Natural perturbations: identity at level 0, ranges, determinism, and the effect each one should have."""

from __future__ import annotations

import pytest
import torch

from engine.attacks.natural import NATURAL, RGB_FROM_HED, apply_natural, gaussian_blur, jpeg, stain_shift
from engine.core.errors import ConfigError, DataError

SIZE = 32


def _he_image(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Beer-Lambert H&E-like tiles: smooth eosin stroma (pink) with haematoxylin nuclei (purple) on white."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    images = []
    for _ in range(n):
        centres = torch.rand(6, 2, generator=g) * SIZE
        dist = ((yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2).sqrt()
        h = 1.2 * (dist < 3.5).any(0).float()
        e = 0.4 + 0.2 * torch.sin(xx / 3.0 + torch.rand(1, generator=g) * 6)
        h[:, : SIZE // 4], e[:, : SIZE // 4] = 0, 0  # a white (empty slide) strip
        od = h[..., None] * RGB_FROM_HED[0].float() + e[..., None] * RGB_FROM_HED[1].float()
        images.append(torch.exp(-od).permute(2, 0, 1))
    return torch.stack(images).clamp(0, 1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _hf_energy(x: torch.Tensor) -> float:
    """Power of the spatial frequencies above a quarter of the sampling rate."""
    spec = torch.fft.fftshift(torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)), dim=(-2, -1)).abs() ** 2
    f = torch.fft.fftshift(torch.fft.fftfreq(x.shape[-1]))
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    return float(spec[..., radius > 0.25].sum())


@pytest.mark.parametrize("fn, kw", [(stain_shift, {"severity": 0.0}), (gaussian_blur, {"sigma": 0.0})])
def test_level_zero_is_the_identity(fn, kw):
    x = torch.rand(3, 3, 16, 16, generator=_gen(0))
    x[0, :, :2, :2] = 0.0
    x[1, :, :2, :2] = 1.0
    assert (fn(x, **kw, generator=_gen(1)) - x).abs().max() <= 1e-5


@pytest.mark.parametrize("name", list(NATURAL))
def test_every_level_keeps_shape_dtype_range_and_input(name):
    x = _he_image()
    before = x.clone()
    for level in NATURAL[name].levels:
        out = apply_natural(name, x, level, generator=_gen(0))
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
        assert out.min() >= 0 and out.max() <= 1
        assert not out.requires_grad
        assert 0 < (out - x).abs().mean() < 0.1, (name, level)
    assert torch.equal(x, before)


def test_registry_levels_and_labels():
    assert NATURAL["stain"].levels == (0.05, 0.1, 0.2) and NATURAL["stain"].parameter == "severity"
    assert NATURAL["blur"].levels == (0.5, 1.0, 2.0) and NATURAL["blur"].parameter == "sigma"
    assert NATURAL["jpeg"].levels == (90, 70, 50) and NATURAL["jpeg"].parameter == "quality"
    assert all(spec.label for spec in NATURAL.values())


def test_stain_shift_is_seeded_and_varies_per_image_and_seed():
    x = _he_image(1).repeat(3, 1, 1, 1)  # three copies of one tile
    a = stain_shift(x, severity=0.2, generator=_gen(5))
    assert torch.equal(a, stain_shift(x, severity=0.2, generator=_gen(5)))
    assert not torch.allclose(a, stain_shift(x, severity=0.2, generator=_gen(6)), atol=1e-3)
    assert not torch.allclose(a[0], a[1], atol=1e-3)  # each image gets its own stain draw


def test_stain_shift_keeps_white_white_and_recolours_tissue():
    x = _he_image(8)
    white = torch.ones(8, 3, 8, 8)
    for seed in range(5):
        assert stain_shift(white, severity=0.2, generator=_gen(seed)).min() >= 0.98
    mild = (stain_shift(x, severity=0.05, generator=_gen(0)) - x).abs().mean()
    strong = (stain_shift(x, severity=0.2, generator=_gen(0)) - x).abs().mean()
    assert 0.001 < mild < strong and strong > 0.01
    out = stain_shift(x, severity=0.2, generator=_gen(0))
    strip = out[..., : SIZE // 4]  # the white strip of every tile stays nearly white
    assert strip.min() >= 0.98


def test_blur_removes_high_frequencies_more_with_sigma():
    x = torch.rand(2, 3, SIZE, SIZE, generator=_gen(0))
    energies = [_hf_energy(gaussian_blur(x, sigma=s)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert energies[1] < 0.7 * energies[0]
    assert energies[3] < energies[2] < energies[1]
    assert energies[2] < 0.1 * energies[0]
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, sigma=2.0), flat, atol=1e-6)  # blur keeps a flat field


def test_jpeg_is_lossy_and_worse_at_lower_quality():
    x = _he_image()
    q95, q50 = jpeg(x, quality=95), jpeg(x, quality=50)
    err95, err50 = (q95 - x).abs().mean(), (q50 - x).abs().mean()
    assert err95 < err50 < 0.05 and err95 < 0.02
    assert not torch.equal(q95, q50)
    assert (jpeg(x, quality=100) - x).abs().mean() < err95
    assert torch.equal(jpeg(x, quality=50), q50)  # deterministic
    assert ((q50 * 255).round() - q50 * 255).abs().max() < 1e-3  # 8-bit values, as a decoded file


@pytest.mark.parametrize(
    "name, level",
    [("stain", -0.1), ("stain", 1.5), ("blur", -1.0), ("blur", float("nan"))]
    + [("jpeg", 0), ("jpeg", 101), ("jpeg", 50.5)],
)
def test_bad_levels_are_config_errors(name, level):
    with pytest.raises(ConfigError):
        apply_natural(name, _he_image(1), level)


def test_unknown_name_and_bad_images():
    with pytest.raises(ConfigError, match="stain"):
        apply_natural("fog", _he_image(1), 1)
    with pytest.raises(ConfigError, match="quality"):
        jpeg(_he_image(1), quality=True)
    with pytest.raises(DataError, match="shape"):
        stain_shift(torch.rand(3, 16, 16), severity=0.1)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        gaussian_blur(torch.rand(1, 3, 8, 8) * 255, sigma=1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", list(NATURAL))
def test_on_the_gpu_with_a_gpu_generator(name):
    x = _he_image().cuda()
    level = NATURAL[name].levels[-1]
    out = apply_natural(name, x, level, generator=torch.Generator("cuda").manual_seed(0))
    assert out.device == x.device and out.dtype == x.dtype and out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, apply_natural(name, x, level, generator=torch.Generator("cuda").manual_seed(0)))
    if name != "stain":  # no random draws: the GPU gives the CPU's result
        assert (out.cpu() - apply_natural(name, x.cpu(), level)).abs().max() < 1e-5
