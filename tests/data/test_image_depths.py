"""read_image reads every bit depth at its true range (issue 19): 16-bit grey PNG/TIFF,
32-bit integer and float TIFF, 16-bit colour PNG; transparency composited over white;
palettes; a decompression bomb is a ValueError naming the file, not a crash."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from faithmap.data.images import read_image


def write_png(path, array, color_type, depth, size=None):
    """A PNG written byte by byte (Pillow cannot write 16-bit colour PNGs); ``size``
    overrides the (W, H) in the header, for a decompression-bomb header."""
    h, w = array.shape[:2]
    w, h = size or (w, h)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    dtype = ">u2" if depth == 16 else "u1"
    raw = b"".join(b"\x00" + row.astype(dtype).tobytes() for row in array)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def ramp16(h=8, w=16):
    """Column j holds 4000·j (16-bit): 0 … 60000."""
    return np.tile((np.arange(w) * 4000).astype(np.uint16)[None, :], (h, 1))


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_sixteen_bit_grey_is_read_at_its_true_range(tmp_path, suffix):
    path = tmp_path / f"g16.{suffix}"
    Image.fromarray(ramp16()).save(path)
    assert Image.open(path).mode.startswith("I;16")
    for channels in (1, 3):
        x = read_image(path, None, channels)
        assert x.shape == (channels, 8, 16)
        expected = np.arange(16) * 4000 / 65535.0
        np.testing.assert_allclose(x[0, 0].numpy(), expected, atol=1e-6)  # not solid white
        assert (x == x[:1]).all()
    resized = read_image(path, 4, channels=1)  # resized as float: the range is kept
    assert resized.shape == (1, 4, 4) and 0.2 < float(resized.mean()) < 0.7


def test_sixteen_bit_png_of_one_value(tmp_path):
    path = write_png(tmp_path / "flat.png", np.full((6, 6), 30000, np.uint16), 0, 16)
    x = read_image(path, None, channels=3)
    assert np.allclose(x.numpy(), 30000 / 65535.0, atol=1e-6)


def test_sixteen_bit_colour_and_grey_alpha_pngs(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 30000, 65535, 0
    x = read_image(write_png(tmp_path / "rgb16.png", rgb, 2, 16), None)
    np.testing.assert_allclose(x[:, 0, 0].numpy(), [30000 / 65535, 1.0, 0.0], atol=1 / 255)
    la = np.zeros((4, 4, 2), np.uint16)
    la[..., 0], la[..., 1] = 30000, 65535  # opaque grey
    x = read_image(write_png(tmp_path / "la16.png", la, 4, 16), None, channels=1)
    np.testing.assert_allclose(x.numpy(), 30000 / 65535, atol=1 / 255)


def test_thirty_two_bit_integer_and_float_tiffs(tmp_path):
    Image.fromarray(ramp16().astype(np.int32)).save(tmp_path / "i32.tif")
    assert Image.open(tmp_path / "i32.tif").mode == "I"
    x = read_image(tmp_path / "i32.tif", None, channels=1)
    np.testing.assert_allclose(x[0, 0].numpy(), np.arange(16) * 4000 / 65535.0, atol=1e-6)
    unit = (np.arange(16, dtype=np.float32) / 15)[None].repeat(4, 0)
    Image.fromarray(unit).save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    np.testing.assert_allclose(read_image(tmp_path / "f.tif", None, 1)[0].numpy(), unit,
                               atol=1e-6)  # kept as is (not 0/1 after an 8-bit cast)
    Image.fromarray(unit * 1000).save(tmp_path / "f1000.tif")
    np.testing.assert_allclose(read_image(tmp_path / "f1000.tif", None, 1)[0].numpy(), unit,
                               atol=1e-6)  # divided by its maximum
    nan = unit.copy()
    nan[0, 0] = np.nan
    Image.fromarray(nan).save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="NaN"):
        read_image(tmp_path / "nan.tif")


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200          # red stored under every pixel
    rgba[:2, :, 3] = 255        # top half opaque, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png", None)
    np.testing.assert_allclose(x[:, 0, 0].numpy(), [200 / 255, 0, 0], atol=1e-6)
    np.testing.assert_allclose(x[:, 3, 0].numpy(), [1, 1, 1], atol=1e-6)  # not the hidden red
    grey_alpha = Image.fromarray(rgba[..., [0, 3]], "LA")
    grey_alpha.save(tmp_path / "la.png")
    g = read_image(tmp_path / "la.png", None, channels=1)
    assert float(g[0, 0, 0]) == pytest.approx(200 / 255) and float(g[0, 3, 0]) == 1.0


def test_palette_and_grey_and_one_bit(tmp_path):
    pal = Image.new("P", (4, 4))
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    x = read_image(tmp_path / "p.png", None)
    np.testing.assert_allclose(x[:, 0, 1].numpy(), [10 / 255, 20 / 255, 30 / 255], atol=1e-6)
    np.testing.assert_allclose(x[:, 0, 0].numpy(), [1, 1, 1])  # transparent index → white
    Image.fromarray(np.full((3, 3), 77, np.uint8)).save(tmp_path / "l.png")
    x = read_image(tmp_path / "l.png", None, channels=3)
    assert x.shape == (3, 3, 3) and np.allclose(x.numpy(), 77 / 255)
    Image.new("1", (3, 3), 1).save(tmp_path / "b.png")
    assert np.allclose(read_image(tmp_path / "b.png", None, 1).numpy(), 1.0)


def test_decompression_bomb_is_a_value_error_naming_the_file(tmp_path):
    path = write_png(tmp_path / "huge.png", np.zeros((1, 1), np.uint8), 0, 8,
                     size=(20000, 10000))  # 200 Mpx claimed by the header
    with pytest.raises(ValueError, match="huge.png.*200000000 pixels"):
        read_image(path)
