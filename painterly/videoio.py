"""Video in and out: PyAV (FFmpeg inside its wheels) for files, or a folder of frames.

Reading keeps what a user would miss: the frame rate (divided by --every), the rotation (frames are
turned upright, so the output plays the way the source did), and the audio, carried over packet by
packet without re-encoding, trimmed to --start/--end. Writing is H.264 (libx264, CRF quality, or
lossless RGB), into a temporary file renamed into place at the end, so a crash leaves no half video.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
import torch

from .errors import PainterlyError
from .image import (READ_SUFFIXES, check_writable, fit_long_side, name_fits, natural_key, open_image, part_prefix,
                    pil_to_tensor, save_image, split_alpha)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".avi")  # containers that take H.264
# Audio codecs the MP4/MOV family takes as they are; anything else (PCM from an AVI, say) is left out
# of such an output with a note (.mkv takes every codec).
MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
FRAME_SUFFIXES = READ_SUFFIXES
FOLDER_RATE = Fraction(25)  # the frame rate a folder of frames plays at, unless fps says another


def _av():
    try:
        import av
    except ImportError:
        raise PainterlyError("video needs PyAV: pip install 'painterly[video]'") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What the frames read come with: their rate, count, size (after the cap) and the source's audio."""

    rate: Fraction
    frames: int           # frames that will be read (after start/end/every)
    size: tuple[int, int]  # (height, width) of the frames read
    source_size: tuple[int, int]
    rotation: int
    has_audio: bool
    start: float
    end: Optional[float]


class VideoSource:
    """Frames of a video file or a folder of images, as 1x3xHxW tensors in [0, 1].

    start/end: seconds; every: keep one frame in N; max_side: scale frames so the long side is at most
    this (None: as they are); fps: a folder's frame rate (None: 25; a video file has its own, and is
    refused one). A folder's frames must all be the size of its first (after EXIF rotation).
    """

    def __init__(self, path: Union[str, os.PathLike], start: float = 0.0, end: Optional[float] = None, every: int = 1,
                 max_side: Optional[int] = None, fps: Optional[float] = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise PainterlyError(f"video '{self.path}' does not exist")
        if every < 1:
            raise PainterlyError(f"every must be at least 1, got {every}")
        if start < 0 or (end is not None and end <= start):
            raise PainterlyError(f"--start {start:g} and --end {end} do not make a time range")
        if fps is not None and not Fraction(fps).limit_denominator(1001) > 0:  # as the rate is kept
            raise PainterlyError(f"--fps must be at least 1/1001, got {fps}")
        self.start, self.end, self.every, self.max_side = start, end, every, max_side
        self.is_folder = self.path.is_dir()
        if not self.is_folder and self.path.suffix.lower() in FRAME_SUFFIXES:
            raise PainterlyError(f"'{self.path}' is an image, not a video; stylise it with `painterly IMAGE STYLE -o OUT`")
        self.folder_rate = FOLDER_RATE if fps is None else Fraction(fps).limit_denominator(1001)
        if fps is not None and not self.is_folder:  # before decoding it all to count its frames
            raise PainterlyError(f"--fps sets the rate of a folder of frames; the video '{self.path}' has its own "
                                 f"({float(self._stream_rate()):g} fps)")
        self.info = self._folder_info() if self.is_folder else self._file_info()
        if self.info.frames == 0:
            raise PainterlyError(f"video '{self.path}' has no frames" + (" in that time range" if start or end else ""))

    # --- a folder of frames -------------------------------------------------------------------
    def _folder_files(self) -> list[Path]:
        files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")),
                       key=natural_key)  # frame_2 before frame_10
        first = int(round(self.start * self.folder_rate))
        last = len(files) if self.end is None else int(round(self.end * self.folder_rate))
        return files[first:last:self.every]

    def _folder_info(self) -> VideoInfo:
        rate = self.folder_rate / self.every
        files = self._folder_files()
        if not files:
            return VideoInfo(rate, 0, (0, 0), (0, 0), 0, False, self.start, self.end)
        w, h = split_alpha(open_image(files[0], "frame"))[0].size
        for path in files[1:]:  # before any work, from the headers: a frame of another size, or not an image
            self._check_frame_size(path, _header_size(path), files[0], (h, w))
        return VideoInfo(rate, len(files), self._capped((h, w)), (h, w), 0, False, self.start, self.end)

    @staticmethod
    def _check_frame_size(path: Path, size: tuple[int, int], first: Path, first_size: tuple[int, int]) -> None:
        if size != first_size:
            raise PainterlyError(f"frame '{path}' is {size[1]}x{size[0]} px but the first, '{first.name}', is "
                                 f"{first_size[1]}x{first_size[0]} px; the frames of one video have one size")

    # --- a video file -------------------------------------------------------------------------
    def _open(self):
        av = _av()
        try:
            container = av.open(str(self.path))
        except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise PainterlyError(f"'{self.path}' is not a video painterly can read ({_reason(exc)})") from None
        if not container.streams.video:
            container.close()
            raise PainterlyError(f"'{self.path}' has no video stream")
        return container

    def _stream_rate(self) -> Fraction:
        container = self._open()
        try:
            return self._rate(container.streams.video[0])
        finally:
            container.close()

    @staticmethod
    def _rate(stream) -> Fraction:
        return Fraction(stream.average_rate or stream.guessed_rate or Fraction(25))

    def _file_info(self) -> VideoInfo:
        container = self._open()
        try:
            stream = container.streams.video[0]
            rate = self._rate(stream)
            if not stream.codec_context or not stream.codec_context.width:
                raise PainterlyError(f"'{self.path}': its video codec cannot be decoded here")
            count = 0
            rotation, size = 0, (stream.codec_context.height, stream.codec_context.width)
            for frame in self._decode(container):
                if count == 0:
                    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
                count += 1
            if rotation in (90, 270):
                size = size[::-1]
            return VideoInfo(Fraction(rate) / self.every, count, self._capped(size), size, rotation,
                             bool(container.streams.audio), self.start, self.end)
        finally:
            container.close()

    def _decode(self, container) -> Iterator:
        """The kept frames (start/end/every applied), decoding errors as one-line PainterlyErrors."""
        av = _av()
        stream = container.streams.video[0]
        index = 0
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 25)
                if t < self.start - 1e-6:
                    continue
                if self.end is not None and t >= self.end - 1e-6:
                    break
                if index % self.every == 0:
                    yield frame
                index += 1
        except av.error.FFmpegError as exc:
            raise PainterlyError(f"'{self.path}' is truncated or corrupt ({_reason(exc)})") from None

    def _capped(self, size: tuple[int, int]) -> tuple[int, int]:
        if self.max_side is None or max(size) <= self.max_side:
            return size
        return fit_long_side(*size, self.max_side)

    def cap(self, max_side: Optional[int]) -> None:
        """Read the frames with their long side at most `max_side` from now on (no need to decode again)."""
        self.max_side = max_side
        self.info = replace(self.info, size=self._capped(self.info.source_size))

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.is_folder:
            files = self._folder_files()
            for path in files:
                image = split_alpha(open_image(path, "frame"))[0]
                self._check_frame_size(path, image.size[::-1], files[0], self.info.source_size)
                yield self._fit(pil_to_tensor(image))
            return
        container = self._open()
        try:
            for frame in self._decode(container):
                image = frame.to_ndarray(format="rgb24")
                rotation = self.info.rotation
                if rotation:
                    image = np.rot90(image, k=rotation // 90)  # counter-clockwise by the display rotation
                yield self._fit(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255)
        finally:
            container.close()

    def _fit(self, frame: torch.Tensor) -> torch.Tensor:
        from .image import resize

        return resize(frame, self.info.size)


def _header_size(path: Path) -> tuple[int, int]:
    """An image file's (height, width) as shown (EXIF rotation applied), from its header alone; a file
    that is not an image is opened in full, for open_image's one-line reason."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # turned a quarter by its EXIF orientation
                w, h = h, w
            return h, w
    except Exception:
        image = split_alpha(open_image(path, "frame"))[0]  # raises the reason where it is not an image
        return image.size[::-1]


def _reason(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "strerror", None) or exc).split())[:160]


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """H.264 with 4:2:0 chroma needs even sides: the size the frames are padded to."""
    return size[0] + size[0] % 2, size[1] + size[1] % 2


def is_video_path(path: Union[str, os.PathLike]) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def work_folder(output: Union[str, os.PathLike]) -> Path:
    """Where a video's finished frames and plan are kept until it is written: OUT.mp4.frames beside a
    video output (the output's whole name, so out.mp4 and out.mkv keep theirs apart), a folder output itself."""
    out = Path(output)
    return out.with_name(f"{out.name}.frames") if is_video_path(out) else out


def check_video_output(path: Path) -> None:
    """Refuse an output that is neither a video file (VIDEO_SUFFIXES) nor a folder for frames (no extension,
    or a folder already there), and a video file that cannot be written there (a folder of that name, a
    read-only place, a name too long): found before the frames are painted, not after."""
    if is_video_path(path):
        if path.is_dir():
            raise PainterlyError(f"output '{path}' is a folder: name a video file, or a folder without a video "
                                 "extension for PNG frames")
        check_writable(path, VIDEO_SUFFIXES)
        folder = work_folder(path).name  # kept beside it: its name must fit the limit too
        if not name_fits(folder, path.parent if str(path.parent) else "."):
            raise PainterlyError(f"output '{path}' cannot be written (its name is too long for the folder of "
                                 f"finished frames kept beside it, '{folder[:20]}...frames'); use a shorter name")
    elif path.suffix and not path.is_dir():
        raise PainterlyError(f"output '{path}': use a video extension ({', '.join(VIDEO_SUFFIXES)}) or a folder name "
                             "for frames")


class VideoSink:
    """Frames out: an H.264 file (written to a temporary name, renamed on close()) or a folder of PNGs.

    crf: x264's quality (0..51, lower is better; 18 is visually near-lossless); lossless: RGB without
    loss (libx264rgb, qp 0). Odd sizes are padded by one replicated row/column; `note` says so.
    """

    def __init__(self, path: Union[str, os.PathLike], size: tuple[int, int], rate: Fraction, *, crf: int = 18,
                 lossless: bool = False, audio_from: Optional[VideoSource] = None) -> None:
        self.path = Path(path)
        self.size, self.rate = size, rate
        self.to_folder = not is_video_path(self.path)
        self.count = 0
        self.note = ""
        self.padded = size  # (height, width) of the frames written: an odd size is padded for H.264
        if self.to_folder:
            check_video_output(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
            return
        if not self.path.parent.is_dir():
            raise PainterlyError(f"output folder '{self.path.parent}' does not exist")
        av = _av()
        self.padded = even_size(size) if not lossless else size
        if self.padded != size:
            self.note = (f"padded {size[1]}x{size[0]} to {self.padded[1]}x{self.padded[0]} "
                         "(H.264's 4:2:0 chroma needs even sides)")
        self.tmp = self.path.with_name(f"{part_prefix(self.path)}part{self.path.suffix}")
        self.container = av.open(str(self.tmp), mode="w")
        codec = "libx264rgb" if lossless else "libx264"
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = self.padded[1], self.padded[0]
        self.stream.pix_fmt = "rgb24" if lossless else "yuv420p"
        self.stream.options = {"qp": "0"} if lossless else {"crf": str(crf), "preset": "medium"}
        if self.path.suffix.lower() == ".avi":  # AVI keeps no presentation times: B-frames came out of order
            self.stream.options = {**self.stream.options, "bf": "0"}
        self.audio_source = audio_from if audio_from is not None and audio_from.info.has_audio else None
        self.audio_in = self.audio_out = None
        if self.audio_source is not None:
            self.audio_in = av.open(str(self.audio_source.path))
            codec = self.audio_in.streams.audio[0].codec_context.name
            if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") and codec not in MP4_AUDIO:
                self.note = "; ".join(filter(None, [self.note, f"the {codec} audio is left out ({self.path.suffix} "
                                                               "cannot hold it as it is; use .mkv to keep it)"]))
                self.audio_in.close()
                self.audio_in = None
            else:
                self.audio_out = self.container.add_stream_from_template(self.audio_in.streams.audio[0])

    def write(self, frame: torch.Tensor) -> None:
        if self.to_folder:
            save_image(frame, self.path / f"frame_{self.count + 1:05d}.png")
            self.count += 1
            return
        av = _av()
        image = (frame[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        ph, pw = self.padded[0] - image.shape[0], self.padded[1] - image.shape[1]
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        video_frame.pts = self.count
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.count += 1

    def _copy_audio(self) -> None:
        """The source's audio packets between start and end, re-timed to the output's start."""
        stream = self.audio_in.streams.audio[0]
        start, end = self.audio_source.info.start, self.audio_source.info.end
        trimmed = bool(start) or end is not None
        offset = int(round(start / stream.time_base)) if start else 0
        for packet in self.audio_in.demux(stream):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            if trimmed:  # untrimmed audio goes over as it is, priming packets (negative pts) included
                t = float((packet.pts if packet.pts is not None else packet.dts) * stream.time_base)
                if t < start - 1e-6 or (end is not None and t >= end):
                    continue
            if offset:
                packet.pts = None if packet.pts is None else packet.pts - offset
                packet.dts -= offset
            packet.stream = self.audio_out
            self.container.mux(packet)

    def close(self) -> None:
        """Finish the file and rename it into place (a folder of frames is already in place)."""
        if self.to_folder:
            return
        for packet in self.stream.encode():
            self.container.mux(packet)
        if self.audio_in is not None:
            self._copy_audio()
            self.audio_in.close()
        self.container.close()
        os.replace(self.tmp, self.path)  # the same folder: atomic

    def abort(self) -> None:
        """Drop a half-written file."""
        if self.to_folder:
            return
        try:
            self.container.close()
        except Exception:
            pass
        if self.audio_in is not None:
            self.audio_in.close()
        self.tmp.unlink(missing_ok=True)
