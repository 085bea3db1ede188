"""Image preprocessing: the same pixels torchvision's transforms give a PIL image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from mtdsl.data.decode import Preprocess
from mtdsl.errors import DataError


def photo(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (height, width, channels) if channels else (height, width)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)


def tv(pipeline, image) -> np.ndarray:
    """torchvision's result as uint8 [C, H, W]."""
    return (transforms.Compose([*pipeline, transforms.PILToTensor()])(image)).numpy()


@pytest.mark.parametrize("width, height", [(50, 37), (37, 50), (32, 32)])
def test_straight_resize_is_torchvision_resize_to_a_square(width, height):
    image = photo(width, height)
    assert np.array_equal(Preprocess(24)(image), tv([transforms.Resize((24, 24))], image))


@pytest.mark.parametrize("width, height", [(150, 110), (110, 150), (131, 131)])
def test_resize_then_crop_is_torchvision_resize_then_centre_crop(width, height):
    image = photo(width, height, seed=1)
    ours = Preprocess(84, resize=126)(image)
    theirs = tv([transforms.Resize(126), transforms.CenterCrop(84)], image)
    assert ours.shape == (3, 84, 84) and np.array_equal(ours, theirs)


def test_one_channel_is_pil_luminance_and_three_channels_drop_alpha():
    image = photo(40, 30, "RGBA", seed=2)
    gray = Preprocess(20, channels=1)(image)
    assert gray.shape == (1, 20, 20)
    expected = np.asarray(image.convert("RGB").convert("L").resize((20, 20), Image.Resampling.BILINEAR))
    assert np.array_equal(gray[0], expected)
    assert Preprocess(20)(photo(40, 30, "L")).shape == (3, 20, 20)


def test_a_box_is_cut_out_before_resizing():
    image = Image.new("RGB", (40, 30), (0, 0, 0))
    image.paste((200, 100, 50), (10, 5, 30, 25))
    pixels = Preprocess(8)(image, box=(10, 5, 30, 25))
    assert (pixels == np.array([200, 100, 50]).reshape(3, 1, 1)).all()


def test_bad_settings_are_data_errors():
    with pytest.raises(DataError, match=r"resize \(20\) must be at least size \(32\)"):
        Preprocess(32, resize=20)
    with pytest.raises(DataError, match="1 .grayscale. or 3 .RGB. channels, not 2"):
        Preprocess(32, channels=2)
    with pytest.raises(DataError, match="positive number of pixels"):
        Preprocess(0)
