"""Image I/O: every sane input mode loads as RGB in [0, 1], hostile files are refused, saves are atomic."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import painterly
from painterly.errors import PainterlyError
from painterly.image import as_tensor, check_writable, open_image, part_prefix, save_image

RED, BLUE = (255, 0, 0), (0, 0, 255)


def gradient(height: int = 48, width: int = 64) -> Image.Image:
    a = np.zeros((height, width, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None]
    a[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    a[..., 2] = 96
    return Image.fromarray(a)


def write_png_header_only_bomb(path, width: int = 10_000, height: int = 10_000) -> None:
    """A valid 1-bit greyscale PNG of width x height (100 MP by default), only a few KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + packed bits
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = zlib.compress(row * height, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def pixel(t: torch.Tensor, y: int, x: int) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in t[0, :, y, x])


# --- modes ----------------------------------------------------------------------------------------

def test_rgb_png_round_trips_exactly(tmp_path):
    img = gradient()
    img.save(tmp_path / "rgb.png")
    t = as_tensor(tmp_path / "rgb.png")
    assert t.shape == (1, 3, 48, 64) and t.dtype == torch.float32
    expected = torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)
    assert torch.equal(t[0], expected)


def test_greyscale_l_becomes_three_equal_channels(tmp_path):
    Image.fromarray(np.full((8, 10), 51, np.uint8), mode="L").save(tmp_path / "grey.png")
    assert open_image(tmp_path / "grey.png").mode == "RGB"
    t = as_tensor(tmp_path / "grey.png")
    assert t.shape == (1, 3, 8, 10)
    assert torch.allclose(t, torch.full_like(t, 0.2))


def test_cmyk_is_converted_to_rgb(tmp_path):
    img = Image.new("CMYK", (6, 4), (255, 0, 0, 0))  # pure cyan ink
    img.paste((0, 0, 0, 255), (0, 0, 3, 4))           # left half black ink
    img.save(tmp_path / "cmyk.tif")
    loaded = open_image(tmp_path / "cmyk.tif")
    assert loaded.mode == "RGB"
    t = as_tensor(tmp_path / "cmyk.tif")
    assert pixel(t, 0, 5) == (0.0, 1.0, 1.0)
    assert pixel(t, 0, 0) == (0.0, 0.0, 0.0)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    t = as_tensor(tmp_path / "cmyk.jpg")
    r, g, b = pixel(t, 8, 8)
    assert r > 0.9 and g < 0.1 and b < 0.1  # magenta + yellow ink = red


def test_16_bit_greyscale_is_scaled_from_65535(tmp_path):
    values = np.array([[0, 32768, 65535, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    t = as_tensor(tmp_path / "deep.png")
    assert t.shape == (1, 3, 1, 4)
    row = t[0, 0, 0]
    assert row[0] == 0.0
    assert row[1] == pytest.approx(0.5, abs=1 / 255)
    assert row[2] == 1.0
    assert row[3] == pytest.approx(1000 / 65535, abs=1 / 255)  # not treated as 8-bit (which would clip to 1)
    assert torch.equal(t[0, 0], t[0, 1]) and torch.equal(t[0, 1], t[0, 2])


def test_palette_image_keeps_its_colours(tmp_path):
    rgb = Image.new("RGB", (8, 4), RED)
    rgb.paste(BLUE, (4, 0, 8, 4))
    rgb.convert("P", palette=Image.ADAPTIVE, colors=4).save(tmp_path / "pal.png")
    assert Image.open(tmp_path / "pal.png").mode == "P"
    assert open_image(tmp_path / "pal.png").mode == "RGB"
    t = as_tensor(tmp_path / "pal.png")
    assert pixel(t, 0, 0) == (1.0, 0.0, 0.0)
    assert pixel(t, 0, 7) == (0.0, 0.0, 1.0)


def test_palette_with_transparency_keeps_alpha(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (2, 0, 4, 4))
    img.info["transparency"] = 1
    img.save(tmp_path / "ptrans.png", transparency=1)
    loaded = open_image(tmp_path / "ptrans.png")
    assert loaded.mode == "RGBA"
    assert loaded.getpixel((0, 0))[3] == 255 and loaded.getpixel((3, 0))[3] == 0
    t = as_tensor(tmp_path / "ptrans.png")
    assert pixel(t, 0, 0) == (1.0, 0.0, 0.0)
    assert pixel(t, 0, 3) == (1.0, 1.0, 1.0)  # transparent: flattened onto white


def test_rgba_is_flattened_onto_white(tmp_path):
    img = Image.new("RGBA", (4, 2), (0, 0, 0, 255))
    img.putpixel((1, 0), (0, 0, 0, 0))        # fully transparent black
    img.putpixel((2, 0), (0, 0, 0, 128))      # half transparent black
    img.save(tmp_path / "rgba.png")
    assert open_image(tmp_path / "rgba.png").mode == "RGBA"
    t = as_tensor(tmp_path / "rgba.png")
    assert pixel(t, 0, 0) == (0.0, 0.0, 0.0)
    assert pixel(t, 0, 1) == (1.0, 1.0, 1.0)
    assert pixel(t, 0, 2)[0] == pytest.approx(127 / 255, abs=2 / 255)


def test_la_greyscale_with_alpha_is_flattened_onto_white(tmp_path):
    img = Image.new("LA", (2, 1), (51, 255))
    img.putpixel((1, 0), (51, 0))
    img.save(tmp_path / "la.png")
    assert open_image(tmp_path / "la.png").mode == "RGBA"
    t = as_tensor(tmp_path / "la.png")
    assert pixel(t, 0, 0) == (0.2, 0.2, 0.2)
    assert pixel(t, 0, 1) == (1.0, 1.0, 1.0)


def test_stylize_keeps_the_content_alpha(tmp_path):
    content = gradient(24, 32).convert("RGBA")
    alpha = Image.new("L", content.size, 255)
    alpha.paste(0, (0, 0, 16, 24))  # left half transparent
    content.putalpha(alpha)
    content.save(tmp_path / "content.png")
    gradient(24, 32).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "style.png")
    out = painterly.stylize(tmp_path / "content.png", tmp_path / "style.png", size=32, iterations=1, scales=1, seed=0)
    assert out.mode == "RGBA" and out.size == (32, 24)
    a = np.asarray(out.getchannel("A"))
    assert a[:, :12].max() < 16 and a[:, 20:].min() > 240
    save_image(out, tmp_path / "out.png")
    assert Image.open(tmp_path / "out.png").mode == "RGBA"
    save_image(out, tmp_path / "out.jpg")  # JPEG has no alpha: flattened, not an error
    assert Image.open(tmp_path / "out.jpg").mode == "RGB"


def test_exif_orientation_is_applied(tmp_path):
    # Stored 40 wide x 24 high with a red top-left block; Orientation=6 means "rotate 90 degrees
    # clockwise to display", so the displayed image is 24 wide x 40 high with red at the top-right.
    img = Image.new("RGB", (40, 24), BLUE)
    img.paste(RED, (0, 0, 12, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    assert Image.open(tmp_path / "rotated.jpg").size == (40, 24)
    t = as_tensor(tmp_path / "rotated.jpg")
    assert t.shape == (1, 3, 40, 24)
    r, g, b = pixel(t, 2, 21)   # top-right: red
    assert r > 0.8 and b < 0.2
    r, g, b = pixel(t, 2, 2)    # top-left: blue
    assert b > 0.8 and r < 0.2
    r, g, b = pixel(t, 37, 21)  # bottom-right: blue
    assert b > 0.8 and r < 0.2


def test_pil_images_and_tensors_are_accepted():
    t = as_tensor(gradient(8, 12))
    assert t.shape == (1, 3, 8, 12)
    assert torch.equal(as_tensor(t[0]), t)
    assert as_tensor(torch.rand(1, 1, 5, 6)).shape == (1, 3, 5, 6)
    with pytest.raises(PainterlyError, match="tensor must be"):
        as_tensor(torch.rand(2, 3, 5, 6), "content image")


# --- hostile or broken files ----------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(PainterlyError, match=r"content image '.*nope\.png' does not exist"):
        as_tensor(tmp_path / "nope.png", "content image")


def test_directory(tmp_path):
    with pytest.raises(PainterlyError, match="is a directory"):
        open_image(tmp_path)


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("not an image\n")
    with pytest.raises(PainterlyError, match="is not an image painterly can read"):
        open_image(tmp_path / "notes.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_corrupt(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PainterlyError, match="corrupt or truncated"):
        as_tensor(path)


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    write_png_header_only_bomb(path)
    assert path.stat().st_size < 100_000
    with pytest.warns(Image.DecompressionBombWarning):
        assert Image.open(path).size == (10_000, 10_000)
    with pytest.raises(PainterlyError, match=r"style image '.*bomb\.png' .*decompression bomb"):
        open_image(path, "style image")


def test_huge_bomb_is_refused(tmp_path):
    path = tmp_path / "huge.png"
    write_png_header_only_bomb(path, 20_000, 20_000)  # over twice the limit: Pillow itself refuses to open
    with pytest.raises(PainterlyError, match="decompression bomb"):
        open_image(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.png"
    gradient().save(path)
    path.chmod(0)
    try:
        with pytest.raises(PainterlyError, match="permission denied"):
            open_image(path)
    finally:
        path.chmod(0o644)


def test_permission_error_is_a_painterly_error(tmp_path, monkeypatch):
    """The same as test_unreadable_file, but also when running as root."""
    path = tmp_path / "secret.png"
    gradient().save(path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(PainterlyError, match="cannot be read: permission denied"):
        open_image(path)


# --- saving ---------------------------------------------------------------------------------------

def part_files(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.webp", "out.tif", "out.bmp"])
def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, name):
    img = gradient(12, 16)
    path = save_image(img, tmp_path / name)
    assert path == tmp_path / name
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert Image.open(path).size == (16, 12)


def test_save_accepts_tensors_and_overwrites(tmp_path):
    out = tmp_path / "t.png"
    save_image(gradient(), out)
    save_image(torch.zeros(1, 3, 5, 7), out)
    assert Image.open(out).size == (7, 5)
    assert np.asarray(Image.open(out)).max() == 0
    assert part_files(tmp_path) == []


def test_saved_files_get_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        out = save_image(gradient(), tmp_path / "perm.png")
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_failed_save_leaves_old_file_and_no_temp_file(tmp_path, monkeypatch):
    out = tmp_path / "keep.png"
    save_image(gradient(), out)
    before = out.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        save_image(gradient(8, 8), out)
    assert out.read_bytes() == before
    assert part_files(tmp_path) == []


def test_interrupted_save_leaves_no_temp_file(tmp_path, monkeypatch):
    def interrupted(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(gradient(8, 8), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_save_to_missing_folder_raises(tmp_path):
    with pytest.raises(PainterlyError, match="does not exist"):
        save_image(gradient(), tmp_path / "missing" / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_save_with_unknown_extension_raises(tmp_path):
    with pytest.raises(PainterlyError, match="unknown extension"):
        save_image(gradient(), tmp_path / "out.gif")
    with pytest.raises(PainterlyError, match="unknown extension"):
        check_writable(tmp_path / "out")


def test_save_onto_a_directory_raises(tmp_path):
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(PainterlyError, match="is a directory"):
        save_image(gradient(), tmp_path / "taken.png")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_save_to_read_only_folder_raises(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PainterlyError, match="not writable"):
            save_image(gradient(), folder / "out.png")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_not_writable_is_a_painterly_error(tmp_path, monkeypatch):
    """check_writable's refusal, also when running as root (where os.access always says yes)."""
    import painterly.image as image_module

    monkeypatch.setattr(image_module.os, "access", lambda path, mode: False)
    with pytest.raises(PainterlyError, match="not writable"):
        save_image(gradient(), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_refuses_new_files_is_found_before_the_work(tmp_path, monkeypatch):
    """As root, os.access says yes for read-only places (/sys, a read-only mount): check_writable makes
    a file there, so the refusal comes before the work, naming the output, not a temporary file."""
    import painterly.image as image_module
    from painterly.image import check_writable

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(image_module.tempfile, "mkstemp", refuse)
    with pytest.raises(PainterlyError, match=r"output '.*out.png' cannot be written \(Permission denied\)"):
        check_writable(tmp_path / "out.png")
    with pytest.raises(PermissionError) as exc:
        image_module.atomic_save(tmp_path / "out.png", lambda tmp: None)
    assert exc.value.filename == str(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_the_api_refuses_an_empty_picture_a_callback_that_is_no_function_and_a_video_config_that_is_not_one(
        tmp_path):
    """One line before any work (a callback of the wrong kind used to fail only after the whole run)."""
    import painterly

    for call, words in ((lambda: painterly.stylize(torch.rand(1, 3, 0, 64), model="starry_night"), "is empty"),
                        (lambda: painterly.stylize(torch.rand(1, 3, 32, 32), model="starry_night", callback=5),
                         "callback must be a function"),
                        (lambda: painterly.stylize_video(tmp_path, None, tmp_path / "o.mp4", model="starry_night",
                                                         video={"end": 0.1}), "must be a painterly.VideoConfig")):
        with pytest.raises(painterly.PainterlyError, match=words) as info:
            call()
        assert "\n" not in str(info.value)
    assert not (tmp_path / "o.mp4").exists()


def test_numpy_images_work_as_pil_images_do():
    """What np.asarray(a PIL image) gives (a notebook's first try) reads as that image: uint8 exactly,
    floats in [0, 1] to 8 bits, greyscale as grey, alpha kept."""
    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    expected = as_tensor(Image.fromarray(rgb))
    assert torch.equal(as_tensor(rgb), expected)
    assert torch.equal(as_tensor(rgb.astype(np.float32) / 255), expected)
    assert torch.equal(as_tensor(rgb[..., 0]), expected[:, :1].expand(-1, 3, -1, -1))
    rgba = np.dstack([rgb, np.full((6, 8), 100, np.uint8)])
    assert open_image(rgba).mode == "RGBA" and painterly.image.image_list(rgba)[0] is rgba  # one image, not rows
    grey_alpha = np.dstack([rgb[..., 0], np.full((6, 8), 100, np.uint8)])  # np.asarray of an LA image
    assert open_image(grey_alpha).mode == "RGBA"
    assert np.array_equal(np.asarray(open_image(grey_alpha))[..., 0], rgb[..., 0])
    for bad, words in ((rgb.astype(np.float32), "looks like 0..255: make it uint8"), (rgb.astype(np.int32), "int32"),
                       (np.zeros((3, 4, 5)), "must be HxW, HxWx2, HxWx3 or HxWx4"), (np.zeros((0, 4, 3)), "must be HxW"),
                       (np.full((4, 4), np.nan), "values in \\[nan")):
        with pytest.raises(PainterlyError, match=words):
            as_tensor(bad, "content image")


@pytest.mark.parametrize("source", [None, 5, b"\x89PNG", 2.5])
def test_an_image_of_another_type_is_refused_naming_what_is_taken(source):
    with pytest.raises(PainterlyError, match="content image must be a file path, a PIL image, a numpy array or a tensor"):
        painterly.stylize(source, torch.rand(1, 3, 16, 16), size=16, iterations=1)


def test_open_image_takes_the_tensors_its_message_names():
    """It said "must be a file path, a PIL image, a numpy array or a tensor; got Tensor"."""
    from painterly.image import open_image

    t = torch.zeros(3, 4, 5)
    t[0, 1, 2] = 1.0
    img = open_image(t)
    assert img.size == (5, 4) and img.mode == "RGB" and img.getpixel((2, 1)) == (255, 0, 0)
    assert open_image(t[None]).size == (5, 4)
    with pytest.raises(PainterlyError, match=r"image tensor must be 1x3xHxW or 3xHxW, got \(2, 3, 4, 4\)"):
        open_image(torch.rand(2, 3, 4, 4))


def test_an_output_name_the_file_system_allows_is_written_and_its_leftovers_found(tmp_path):
    """A 250-byte name (the limit is 255) was refused, 'File name too long': the temporary file beside it
    added 15 bytes. Japanese or emoji names reach it sooner (3-4 bytes a character)."""
    from painterly.image import remove_stale_parts

    out = tmp_path / ("日本" * 40 + "x" * 6 + ".png")  # 240 + 6 + 4 = 250 bytes
    assert len(os.fsencode(out.name)) == 250
    painterly.save_image(Image.new("RGB", (8, 8)), out)
    assert Image.open(out).size == (8, 8) and [p.name for p in tmp_path.iterdir()] == [out.name]
    stale = tmp_path / f"{part_prefix(out)}abcdefgh.part"  # what a killed writer leaves
    stale.write_bytes(b"x")
    remove_stale_parts(out)
    assert not stale.exists() and out.exists()


def test_a_photo_in_another_colour_space_is_read_in_srgb(tmp_path):
    """A phone's Display P3 photo was read as sRGB (5.4/255 off on average). Here the profile is sRGB with its
    red and green primaries swapped: the file's pure red is green in sRGB, and is read so; an sRGB-tagged
    file is read untouched, and a broken profile is ignored."""
    import struct

    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    tags = {}
    for i in range(struct.unpack(">I", profile[128:132])[0]):
        signature, offset, size = struct.unpack(">4sII", profile[132 + 12 * i:144 + 12 * i])
        tags[signature] = (offset, size)
    (red, size), (green, _) = tags[b"rXYZ"], tags[b"gXYZ"]
    profile[red:red + size], profile[green:green + size] = profile[green:green + size], profile[red:red + size]
    swapped = bytes(profile).replace("sRGB".encode("utf-16-be"), "odd!".encode("utf-16-be"))  # not named sRGB
    for name, icc, expected in (("swapped.png", swapped, (0, 255, 0)),
                                ("srgb.png", ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
                                 (255, 0, 0)),
                                ("broken.png", b"not a profile", (255, 0, 0))):
        Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / name, icc_profile=icc)
        assert open_image(tmp_path / name).getpixel((0, 0)) == expected, name
    assert "icc_profile" not in open_image(tmp_path / "swapped.png").info
