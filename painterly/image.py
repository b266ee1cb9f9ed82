"""Image I/O and colour: load any sane image as an RGB tensor, save atomically, convert colour spaces.

Every public function here speaks NCHW float32 RGB in [0, 1]; nothing else in painterly opens files.
"""

from __future__ import annotations

import glob
import io
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DamagedImageError, ImageTooLargeError, NotAnImageError, PainterlyError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]
ONE_IMAGE = (str, os.PathLike, Image.Image, np.ndarray, torch.Tensor)  # an ImageLike, not a list of them


def image_list(images: Union[ImageLike, Sequence[ImageLike]]) -> list[ImageLike]:
    """One image (a path, PIL image, array or tensor) as a list of one; several as a list."""
    if isinstance(images, ONE_IMAGE):
        return [images]
    if not isinstance(images, Iterable) or isinstance(images, (bytes, dict)):
        raise PainterlyError(f"images must be file paths, PIL images, numpy arrays or tensors, or a list of them; "
                             f"got {type(images).__name__}")
    return list(images)

# Pillow's own decompression-bomb threshold (~89 MP). Above it we refuse instead of warning.
MAX_INPUT_PIXELS = 89_478_485
READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")  # what a folder of images holds
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


def open_image(source: ImageLike, what: str = "image") -> Image.Image:
    """Open a file (or take a PIL image, numpy array or tensor), honour EXIF rotation and return it in RGB
    or RGBA.

    16-bit, greyscale, palette, CMYK and LA images are converted properly; alpha is kept (RGBA).
    """
    if isinstance(source, Image.Image):
        img = source
        name = what
    elif isinstance(source, np.ndarray):
        img, name = array_image(source, what), what
    elif isinstance(source, torch.Tensor):  # as the pipeline takes it: 1x3xHxW or 3xHxW in [0, 1]
        img, name = tensor_to_pil(as_tensor(source, what)), what
    elif not isinstance(source, (str, os.PathLike)):
        raise PainterlyError(f"{what} must be a file path, a PIL image, a numpy array or a tensor; "
                             f"got {type(source).__name__}")
    else:
        path = Path(source)
        name = f"{what} '{path}'"
        if not path.exists():
            raise PainterlyError(f"{name} does not exist")
        if path.is_dir():
            raise PainterlyError(f"{name} is a directory, not an image")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(path)
                if img.width * img.height > MAX_INPUT_PIXELS:
                    raise ImageTooLargeError(
                        f"{name} is {img.width}x{img.height} pixels, over the {MAX_INPUT_PIXELS // 1_000_000} MP "
                        "safety limit (possible decompression bomb)")
                img.load()
        except PainterlyError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLargeError(f"{name} is too large to open safely (possible decompression bomb)") from None
        except UnidentifiedImageError:
            raise NotAnImageError(f"{name} is not an image painterly can read") from None
        except PermissionError:
            raise PainterlyError(f"{name} cannot be read: permission denied") from None
        except OSError as exc:
            if exc.errno is not None:  # the disk or the system (EIO, ESTALE, EMFILE): another read may work
                raise PainterlyError(f"{name} cannot be read ({exc.strerror or exc})") from None
            raise DamagedImageError(f"{name} is corrupt or truncated ({exc})") from None
        except (SyntaxError, ValueError) as exc:
            raise DamagedImageError(f"{name} is corrupt or truncated ({exc})") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not stop the run; the pixels are still good
        pass
    return _to_rgb_or_rgba(_in_srgb(img))


def _in_srgb(img: Image.Image) -> Image.Image:
    """The pixels in sRGB where an embedded colour profile puts them in another space: a phone's Display P3
    photo read as sRGB was 5.4/255 off on average, more in saturated colours. sRGB-tagged pictures are left
    as they are (a round trip would move pixels by rounding); a profile that cannot be read is ignored."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower():
            return img
        converted = ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"),
                                              outputMode="RGBA" if img.mode == "RGBA" else "RGB")
    except Exception:  # noqa: BLE001 - an unreadable or unusual profile: the pixels as they are, as before
        return img
    converted.info.pop("icc_profile", None)
    return converted


def array_image(array: np.ndarray, what: str = "image") -> Image.Image:
    """A numpy image as np.asarray(a PIL image) gives it (HxW, HxWx2 grey and alpha, HxWx3 or HxWx4; uint8,
    or floats in [0, 1] read to 8 bits) as a PIL image, so a notebook's arrays work where files and PIL
    images do. (A palette image's array holds palette indices: convert("RGB") it first.)"""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)) or not array.size:
        raise PainterlyError(f"{what} array must be HxW, HxWx2, HxWx3 or HxWx4, got shape {array.shape}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        low, high = float(array.min()), float(array.max())
        if not (low >= -RANGE_SLACK and high <= 1 + RANGE_SLACK):  # also catches NaN
            hint = " (it looks like 0..255: make it uint8)" if high > 1.5 else ""
            raise PainterlyError(f"{what} array has values in [{low:g}, {high:g}]; painterly takes uint8 or floats "
                                 f"in [0, 1]{hint}")
        array = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise PainterlyError(f"{what} array is {array.dtype}; painterly takes uint8 or floats in [0, 1]")
    if array.shape[0] * array.shape[1] > MAX_INPUT_PIXELS:
        raise ImageTooLargeError(f"{what} is {array.shape[1]}x{array.shape[0]} pixels, over the "
                                 f"{MAX_INPUT_PIXELS // 1_000_000} MP safety limit")
    return Image.fromarray(np.ascontiguousarray(array))


def _to_rgb_or_rgba(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode != "I" or arr.max() > 255 else 255.0
        arr8 = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr8 = np.round((arr - lo) / max(hi - lo, 1e-12) * 255.0).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "RGBA":
        return img
    if img.mode in ("LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    if img.mode == "RGB":
        return img
    if img.mode == "1":
        return img.convert("L").convert("RGB")
    if img.mode in ("L", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        return img.convert("RGB")
    try:
        return img.convert("RGB")
    except Exception:
        raise PainterlyError(f"unsupported image mode {img.mode}") from None


def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Flatten an RGBA image onto white for the network; return the alpha to re-attach later."""
    if img.mode != "RGBA":
        return img, None
    alpha = img.getchannel("A")
    white = Image.new("RGB", img.size, (255, 255, 255))
    white.paste(img, mask=alpha)
    return white, alpha


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> 1x3xHxW float32 in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """1x3xHxW (or 3xHxW) tensor in [0, 1] -> RGB PIL image (clamped and rounded)."""
    if image.dim() == 4:
        image = image[0]
    arr = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


# Tensors a little outside [0, 1] (resampling overshoot, float error) are clamped; anything further out
# is a different convention (0..255, or mean/std-normalised) and refused instead of silently clipped.
RANGE_SLACK = 0.01


def as_tensor(source: ImageLike, what: str = "image") -> torch.Tensor:
    """Accept a path, a PIL image, a numpy array or a tensor and return a 1x3xHxW float32 tensor in [0, 1]."""
    if isinstance(source, torch.Tensor):
        t = source.detach()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] not in (1, 3):
            raise PainterlyError(f"{what} tensor must be 1x3xHxW or 3xHxW, got {tuple(source.shape)}")
        if min(t.shape[-2:]) < 1:
            raise PainterlyError(f"{what} tensor is empty ({tuple(source.shape)})")
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        if not t.is_floating_point():
            raise PainterlyError(f"{what} tensor is {t.dtype}; painterly takes float tensors in [0, 1] "
                                 "(divide 8-bit images by 255)")
        low, high = float(t.min()), float(t.max())
        if not (low >= -RANGE_SLACK and high <= 1 + RANGE_SLACK):  # also catches NaN
            hint = " (it looks like 0..255: divide by 255)" if high > 1.5 else ""
            raise PainterlyError(f"{what} tensor has values in [{low:g}, {high:g}]; painterly takes values in "
                                 f"[0, 1]{hint}")
        return t.float().clamp(0, 1).contiguous()
    rgb, _ = split_alpha(open_image(source, what))
    return pil_to_tensor(rgb)


def as_map(source: ImageLike, what: str = "map") -> torch.Tensor:
    """A mask or colour-coded map as as_tensor gives it, with transparency read as black, unpainted: a mask
    painted white on a transparent layer, flattened onto white as pictures are, was white all over and
    silently did nothing."""
    if isinstance(source, (torch.Tensor, np.ndarray)):
        return as_tensor(source, what)
    img = open_image(source, what)
    if img.mode == "RGBA":
        black = Image.new("RGB", img.size, (0, 0, 0))
        black.paste(img, mask=img.getchannel("A"))
        img = black
    return pil_to_tensor(img)


def natural_key(path: Union[str, os.PathLike]) -> list:
    """A sort key that orders the numbers in names by value: frame 2 before frame 10 (text order played a
    folder's 1, 10, 11, 2, ... as a video)."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", str(path)))]


def fit_long_side(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) scaled so the longer side is `long_side`, aspect ratio kept, each side >= 1."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def reflected(image: torch.Tensor, margin: int) -> torch.Tensor:
    """The image mirrored `margin` px beyond each edge (the margin a decoder trained with --margin
    decodes the picture inside of)."""
    return F.pad(image, (margin,) * 4, mode="reflect") if margin else image


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize (downsampling without aliasing, upsampling smoothly)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def check_writable(path: Union[str, os.PathLike], suffixes: Optional[Sequence[str]] = None, *,
                   try_file: bool = True, inputs: Sequence = (), what: str = "output") -> Path:
    """Fail early (before hours of work) if `path` cannot be written, has an unknown extension
    (`suffixes`, default: the image formats painterly saves; () for any) or is one of the run's `inputs`
    (paths; other values are skipped), which the output would replace. try_file: also make (and remove) a
    file in its folder; a writer about to make the real file there skips that. `what`: the file's name in
    the messages (a checkpoint is no output)."""
    out = Path(path)
    refuse_overwriting_inputs(out, inputs)
    allowed = SAVE_FORMATS if suffixes is None else suffixes
    if out.is_dir():  # a folder first: "unknown extension" would not say what is wrong
        raise PainterlyError(f"{what} '{out}' is a directory; name a file in it")
    if allowed and out.suffix.lower() not in allowed:
        raise PainterlyError(
            f"{what} '{out}' has an unknown extension; use one of {', '.join(sorted(allowed))}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise PainterlyError(f"{what} folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise PainterlyError(f"{what} '{out}' is not writable")
    if not try_file:
        return out
    try:  # a file really made there: root passes os.access in read-only places (/sys, a read-only mount)
        fd, probe = tempfile.mkstemp(prefix=part_prefix(out), suffix=".part", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PainterlyError(f"{what} '{out}' cannot be written ({exc.strerror or exc})") from None
    return out


def refuse_overwriting_inputs(output: Path, inputs: Sequence) -> None:
    """A one-line refusal where `output` names the same file as one of `inputs` (those that are paths)."""
    for given in inputs:
        if not isinstance(given, (str, os.PathLike)) or not Path(given).exists():
            continue
        same = os.path.samefile(given, output) if output.exists() else Path(given).resolve() == output.resolve()
        if same:
            raise PainterlyError(f"output '{output}' is an input of this run ('{given}'); write it to another file")


def save_image(image: Union[Image.Image, torch.Tensor], path: Union[str, os.PathLike], *,
               quick: bool = False) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename. Never a half-written file.

    quick: PNG at zlib level 1, for working files read back soon (a video's frames): at 640x360
    about 3x faster to write than the default level 6, for a file 4% larger."""
    out = check_writable(path, try_file=False)  # atomic_save makes the file next
    img = tensor_to_pil(image) if isinstance(image, torch.Tensor) else image
    fmt = SAVE_FORMATS[out.suffix.lower()]
    if fmt == "JPEG" and img.mode == "RGBA":
        img, _ = split_alpha(img)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {"compress_level": 1} if quick and fmt == "PNG" else {}
    atomic_write(out, lambda fh: img.save(fh, format=fmt, **options))
    return out


def _set_mode(tmp: str, out: Path) -> None:
    """mkstemp makes 0600 files; give the result the permissions a plain open() would (umask, or the old file's)."""
    try:
        mode = os.stat(out).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def fsync_folder(folder: Union[str, os.PathLike]) -> None:
    """Flush a folder's entries to disk, so a rename inside it survives a power cut (not only a crash)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not openable as a folder (e.g. some network file systems): nothing more to do
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


NAME_MAX = 255  # bytes in a file name on the usual file systems (ext4, XFS, APFS; NTFS's 255 UTF-16 units)


def name_fits(name: str, folder: Union[str, os.PathLike, None] = None) -> bool:
    """Whether a file called `name` can be made in `folder` (its file system's limit where it exists, else
    NAME_MAX): found before the work, not by the write at its end."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX") if folder is not None and os.path.isdir(folder) else NAME_MAX
    except (OSError, ValueError):
        limit = NAME_MAX
    return len(os.fsencode(name)) <= limit


def part_prefix(path: Union[str, os.PathLike]) -> str:
    """How every temporary file written beside `path` on its way to becoming it begins (hidden, named after
    it), so remove_stale_parts can find what a killed writer left. A long name is cut to 200 bytes: a name
    the file system allows (255) was refused as 'File name too long' once the temporary's 15 were added."""
    name = Path(path).name
    while len(os.fsencode(name)) > 200:
        name = name[:-1]
    return f".{name}."


def atomic_save(path: Union[str, os.PathLike], save_to: Callable[[str], None], durable: bool = False) -> None:
    """Call `save_to` with the name of a temporary file beside `path`, then rename it into place; on any
    failure (or Ctrl-C) the temporary file is removed and `path` is left as it was. durable: also fsync
    the file before and its folder after the rename, so it survives a power cut."""
    out = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=part_prefix(out), suffix=".part", dir=out.parent if str(out.parent) else ".")
    except OSError as exc:  # named by the file asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, str(out)) from None
    os.close(fd)
    try:
        save_to(tmp)
        if durable:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        _set_mode(tmp, out)
        os.replace(tmp, out)
        if durable:
            fsync_folder(out.parent if str(out.parent) else ".")
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_parts(path: Union[str, os.PathLike]) -> None:
    """Delete the temporary files a killed writer of `path` left beside it (`.NAME.*.part` from atomic_save,
    `.NAME.partSUFFIX` from the video writer; both start with part_prefix): a process killed with SIGKILL
    cannot clean up after itself. Only for a caller that knows no other writer of `path` is alive (a
    batch, once its job is done)."""
    out = Path(path)
    for stale in (out.parent if str(out.parent) else Path(".")).glob(f"{glob.escape(part_prefix(out))}*part*"):
        try:
            stale.unlink()
        except OSError:
            pass


def atomic_write(path: Union[str, os.PathLike], write: Callable[[BinaryIO], None], durable: bool = False) -> None:
    """atomic_save for a writer of an open binary file."""
    def save_to(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            write(fh)

    atomic_save(path, save_to, durable)


def write_bytes_atomic(data: bytes, path: Union[str, os.PathLike]) -> None:
    """Atomic write for non-image outputs (JSON logs)."""
    atomic_write(path, lambda fh: fh.write(data))


# --- colour ---------------------------------------------------------------------------------------

# ITU-R BT.601 YIQ: luminance plus two chroma axes; the transform Gatys et al. (2016, "Preserving
# Color in Neural Artistic Style Transfer") use for luminance-only transfer.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_YIQ.double()).to(image), image)


def transfer_luminance(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the stylised image's luminance and the content's chroma (I, Q), so colours stay the photo's."""
    content = resize(content, tuple(stylised.shape[-2:]))
    y = rgb_to_yiq(stylised)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0, 1)


def match_color(source: torch.Tensor, reference: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Linearly map `source`'s colours so their mean and covariance equal `reference`'s.

    The 'colour histogram matching' of Gatys et al. (2016): applied to the style image so the
    transferred style uses the photo's palette. Uses symmetric matrix square roots (Image Analogies variant).
    """
    src = source[0].reshape(3, -1).double()
    ref = reference[0].reshape(3, -1).double()
    mu_s, mu_r = src.mean(1, keepdim=True), ref.mean(1, keepdim=True)
    eye = torch.eye(3, dtype=torch.float64, device=src.device)
    cov_s = torch.cov(src) + eps * eye
    cov_r = torch.cov(ref) + eps * eye
    transform = _sqrtm(cov_r) @ torch.linalg.inv(_sqrtm(cov_s))
    out = transform @ (src - mu_s) + mu_r
    return out.reshape_as(source[0]).unsqueeze(0).to(source.dtype).clamp(0, 1)


def _sqrtm(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
