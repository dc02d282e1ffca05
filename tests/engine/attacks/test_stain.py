"""The H&E stain maths and the training's HED jitter: range, identity, colour changed and structure kept, seeding."""

from __future__ import annotations

import pytest
import torch

from engine.attacks.natural import stain_shift
from engine.attacks.stain import HED_FROM_RGB, RGB_FROM_HED, hed_jitter, hed_to_rgb, rgb_to_hed, scale_and_shift
from engine.core.errors import ConfigError
from tests.engine.attacks.test_natural import _gen, _he_image


def test_the_matrices_are_skimages_and_each_others_inverse():
    assert torch.allclose(RGB_FROM_HED @ HED_FROM_RGB, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert RGB_FROM_HED[0].tolist() == [0.65, 0.70, 0.29]  # skimage.color.rgb_from_hed, haematoxylin row


def test_round_trip_is_the_identity():
    x = torch.rand(3, 3, 8, 8).clamp_min(1e-3)
    assert torch.allclose(hed_to_rgb(rgb_to_hed(x)), x, atol=1e-6)


@pytest.mark.parametrize(("scale", "shift"), [(0.05, 0.05), (0.2, 0.2), (0.9, 1.0)])
def test_jitter_stays_in_range_with_shape_dtype_and_device(scale, shift):
    x = _he_image(6)
    out = hed_jitter(x, scale=scale, shift=shift, generator=_gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert 0 <= out.min() <= out.max() <= 1
    assert torch.equal(x, _he_image(6)), "the input is not modified"


def test_jitter_at_zero_is_the_identity():
    x = _he_image(4)
    assert torch.allclose(hed_jitter(x, scale=0.0, shift=0.0, generator=_gen(0)), x, atol=1e-5)


def test_jitter_changes_colour_per_image():
    x = _he_image(4)
    out = hed_jitter(x, scale=0.2, shift=0.1, generator=_gen(1))
    assert (out - x).abs().mean() > 0.01
    mean_shift = (out - x).mean(dim=(2, 3))  # per image and channel
    assert not torch.allclose(mean_shift[0], mean_shift[1], atol=1e-3), "each image gets its own draw"


def test_jitter_keeps_structure_it_acts_on_each_pixels_colour_alone():
    x = _he_image(4)
    perm = torch.randperm(x.shape[-2] * x.shape[-1], generator=_gen(3))

    def shuffle(t):  # move every pixel elsewhere, the same way in every image and channel
        return t.flatten(2)[..., perm].reshape(t.shape)

    out = hed_jitter(x, scale=0.2, shift=0.1, generator=_gen(2))
    assert torch.allclose(hed_jitter(shuffle(x), scale=0.2, shift=0.1, generator=_gen(2)), shuffle(out), atol=1e-6)
    flat, flat_out = x[0].flatten(1).T, out[0].flatten(1).T
    same = (flat[:, None] == flat[None]).all(-1)  # pixels of one colour keep one colour
    assert torch.equal(same, same & (flat_out[:, None] == flat_out[None]).all(-1))


def test_jitter_is_seeded():
    x = _he_image(3)
    a = hed_jitter(x, scale=0.1, shift=0.05, generator=_gen(5))
    assert torch.equal(a, hed_jitter(x, scale=0.1, shift=0.05, generator=_gen(5)))
    assert not torch.allclose(a, hed_jitter(x, scale=0.1, shift=0.05, generator=_gen(6)), atol=1e-3)


def test_the_evaluations_stain_shift_is_the_same_maths():
    x, s = _he_image(3), 0.2
    g = _gen(7)
    scale = 1 - s + 2 * s * torch.rand((3, 1, 1, 3), generator=g, dtype=torch.float64)
    shift = (-s + 2 * s * torch.rand((3, 1, 1, 3), generator=g, dtype=torch.float64)) * 0.05
    assert torch.allclose(stain_shift(x, severity=s, generator=_gen(7)), scale_and_shift(x, scale, shift), atol=1e-6)


@pytest.mark.parametrize(("scale", "shift"), [(-0.1, 0.0), (1.0, 0.0), (0.1, -0.1), (0.1, 1.5), (True, 0.1)])
def test_bad_jitter_settings_are_refused_with_advice(scale, shift):
    with pytest.raises(ConfigError, match="HED jitter.*try 0.05"):
        hed_jitter(_he_image(1), scale=scale, shift=shift)
