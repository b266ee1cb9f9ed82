"""Video: every method frame after frame, kept consistent along the optical flow (Ruder et al. 2016).

A method that can start from an image (`Recipe.later_frames`, the optimisation methods) paints frame t
from the stylised frame t-1 warped onto it (the content where the flow is unreliable), with a
temporal loss, weighted by the reliability mask, that holds consistent regions to the warped frame;
`long_term` adds the same term toward several earlier frames, each pixel toward the nearest one
that sees it reliably (Ruder et al.'s long-term masks). Other methods (feed-forward networks) stylise
each frame and blend in the warped previous output where the flow is reliable. A temporal weight of
0 paints independent frames.

Style targets are prepared once per video (the driver's Session). Frames are read at the output size,
so the flow is computed where the picture is made. Each finished frame is saved as a PNG in a work
folder beside the output, with a plan that fingerprints the inputs and options; `resume` continues
after the last saved frame, and since every frame (also the one the next starts from) passes through
the same 8-bit PNG, a resumed video equals an uninterrupted one; a run without `resume` over a folder
holding finished frames of the same run is refused rather than losing them. The video is encoded from
those frames at the end, atomically, and the work folder removed; bad input found mid-run removes what
the run wrote (Ctrl-C keeps it, to resume).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch

from .api import asks_size_max, get_method, initial_image, largest_size, make_config, method_of, plan
from .checkpoint import NOT_IN_FINGERPRINT, run_record, what_differs
from .config import MAX_ITERATIONS, MethodConfig, option
from .driver import Session
from .errors import PainterlyError
from .flow import tracked, warp
from .hardware import resumed_threads
from .image import (ImageLike, as_map, as_tensor, open_image, pil_to_tensor, refuse_overwriting_inputs, save_image,
                    split_alpha, tensor_to_pil, write_bytes_atomic)
from .progress import Callback, StopRun
from .recipe import Place
from .schedule import RunPlan
from .videoio import VideoSink, VideoSource, check_video_output, is_video_path, work_folder

TEMPORAL = "temporal"


@dataclass(frozen=True)
class VideoConfig(MethodConfig):
    """How a video is read, kept consistent and written (the method's own options are its config)."""

    temporal_weight: float = option(200.0, "weight of the temporal loss (optimisation methods) and, as w/(w+100), "
                                    "of the warped previous output blended in (feed-forward); 0: independent frames",
                                    minimum=0, group="video", metavar="W")
    long_term: int = option(0, "also hold each frame to N earlier frames (2, 4, ..., 2^N back), not just the "
                            "last (Ruder et al.'s long-term consistency; optimisation methods)", minimum=0,
                            group="video", metavar="N")
    later_iterations: Optional[int] = option(None, "iterations for each frame after the first (which starts from "
                                             "the previous one, so needs fewer; optimisation methods)", minimum=1,
                                             maximum=MAX_ITERATIONS,
                                             default_text="the method's", group="video", metavar="N")
    start: float = option(0.0, "first second of the video to use", minimum=0, group="video", metavar="SECONDS")
    end: Optional[float] = option(None, "second to stop at", above=0, default_text="the end", group="video",
                                  metavar="SECONDS")
    every: int = option(1, "use one frame in N (the frame rate is divided by N)", minimum=1, group="video",
                        metavar="N")
    fps: Optional[float] = option(None, "the frame rate of a folder of frames (what --start/--end count in, and "
                                  "the output's); a video file has its own", above=0, default_text="25",
                                  group="video", metavar="N")
    crf: Optional[int] = option(None, "H.264 quality of a video file output, 0..51, lower is better (18: "
                                "visually near-lossless; not with --lossless)",
                                minimum=0, default_text="18", group="video", metavar="Q")
    lossless: bool = option(False, "lossless RGB H.264 for a video file output (large files, and RGB H.264 that "
                            "many players and browsers do not play: for editing, not for sharing)", group="video")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.crf is not None and self.crf > 51:
            raise PainterlyError(f"crf must be at most 51, got {self.crf}")
        if self.lossless and self.crf is not None:
            raise PainterlyError("--lossless keeps every pixel; it takes no --crf")


@dataclass
class FrameInfo:
    """What a per-frame callback learns: the frame's number (1-based) of `frames`; `seconds` it took and
    `elapsed` since the run began; its loss terms; whether it was `resumed` (loaded from the work folder);
    the `size` painted, (width, height); how many frames this process has `painted`; `stopped_early`
    ("max_time" where --max-time cut it short); and `eta`, the seconds left at this pace."""

    frame: int         # 1-based
    frames: int
    seconds: float     # this frame's
    elapsed: float
    losses: dict
    resumed: bool      # loaded from the work folder, not painted now
    size: tuple[int, int] = (0, 0)  # (width, height) the frames are painted at (--size max: the size chosen)
    painted: int = 0   # frames this process has painted so far (a resumed run loads the others)
    stopped_early: Optional[str] = None  # "max_time" where this frame did fewer iterations than planned

    @property
    def eta(self) -> float:
        """Seconds left at this process's pace so far (frames loaded on resume take no time, so they do
        not count); NaN until a frame has been painted."""
        if self.painted == 0:
            return float("nan")
        return self.elapsed / self.painted * (self.frames - self.frame)


FrameCallback = Callable[[FrameInfo], None]


def _fingerprint(source: VideoSource, styles: Sequence[torch.Tensor], method: str, config, video: VideoConfig,
                 guides: Sequence[Optional[torch.Tensor]], size_max: bool = False) -> tuple[str, dict]:
    """The inputs and options of a run (size_max: the size asked for is 'max', whichever it resolves to,
    so a resume, or another free memory, does not make it another run), and its `run_record` (what a
    refused resume names as differing)."""
    frames = hashlib.sha256()
    files = sorted(source.path.iterdir()) if source.is_folder else [source.path]
    frames.update(f"{source.path.resolve()}|{source.info}".encode())
    for path in files:  # a folder's frames one by one: a frame edited in place is another input
        stat = path.stat()
        frames.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    h = frames.copy()
    for t in [*styles, *guides]:
        if t is not None:
            h.update(t.numpy().tobytes())
    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_IN_FINGERPRINT}
    if size_max:
        options["size"] = "max"
    h.update(json.dumps([method, options, dataclasses.asdict(video)], sort_keys=True, default=str).encode())
    record = run_record([*styles, *guides], {"method": method, **options, **dataclasses.asdict(video)})
    record["inputs"].insert(0, frames.hexdigest())
    return h.hexdigest(), record


def temporal_term(targets: Sequence[tuple[torch.Tensor, torch.Tensor]], weight: float):
    """The temporal loss as an extra driver term: weight · Σ_j mean(c_j · (x − ω_j)²), pixels in
    0..255 units (Ruder et al.'s 1/D Σ c (x − ω)²), each warped earlier frame ω_j with its mask c_j."""
    def term(image: torch.Tensor, place: Place) -> torch.Tensor:
        total = image.new_zeros(())
        for warped, mask in targets:
            w, m = place.crop(warped), place.crop(mask)
            total = total + (m * (image * 255 - w * 255) ** 2).mean()
        return weight * total
    return term


def _long_term_masks(masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """Ruder et al.'s long-term masks: each pixel held only to the nearest earlier frame that sees it
    reliably (masks ordered nearest first)."""
    taken = torch.zeros_like(masks[0])
    out = []
    for m in masks:
        out.append((m - taken).clamp(min=0))
        taken = (taken + m).clamp(max=1)
    return out


@dataclass(frozen=True)
class VideoResult:
    """What stylize_video wrote."""

    path: Path
    frames: int
    rate: object       # the output's frame rate (a Fraction)
    size: tuple[int, int]  # (width, height) of the frames written, as PIL's Image.size (an odd size padded for H.264)
    note: str = ""     # e.g. how an odd size was padded for H.264


def stylize_video(source: Union[str, os.PathLike], styles: Union[None, ImageLike, Sequence[ImageLike]], output: Union[str, os.PathLike],
                  *, method: Optional[str] = None, config=None, video: Optional[VideoConfig] = None,
                  resume: bool = False, callback: Optional[FrameCallback] = None, step_callback: Optional[Callback] = None,
                  content_guidance: Optional[ImageLike] = None, style_guidance=None,
                  **options) -> VideoResult:
    """Stylise a video file or a folder of frames into OUT (a video file, or a folder for PNG frames).

    method / config / options: as for stylize() (size caps the frames' long side; max_time limits each
    frame). video: how frames are read, kept consistent and written (VideoConfig). callback: after every
    frame with a FrameInfo; step_callback: every optimisation step, as stylize()'s callback. Raising
    painterly.StopRun in either stops the video as Ctrl-C does: KeyboardInterrupt, with the finished frames
    kept. resume: continue from the frames a stopped run left in the work folder (OUT.frames), with the
    same inputs and options. Returns what was written. A video's audio stream is carried over untouched
    into a video file (a folder of frames holds none: VideoResult.note says so).
    """
    for hook in (callback, step_callback):
        if hook is not None and not callable(hook):
            raise PainterlyError(f"a callback must be a function, got {type(hook).__name__}")
    video, cfg, name, recipe, styles, style_ts, size_max = _request(styles, method, config, video, options)
    out = Path(output)
    if not is_video_path(out) and (video.crf is not None or video.lossless):
        given = ", ".join(f for f, v in (("--crf", video.crf is not None), ("--lossless", video.lossless)) if v)
        raise PainterlyError(f"{given}: '{out}' is a folder of PNG frames, which keep every pixel; --crf and "
                             "--lossless are for a video file output")
    frames = VideoSource(source, video.start, video.end, video.every, max_side=None if size_max else cfg.size,
                         fps=video.fps)
    if is_video_path(out) and not out.parent.is_dir():
        raise PainterlyError(f"output folder '{out.parent}' does not exist")
    check_video_output(out)  # before the frames are painted, not after
    refuse_overwriting_inputs(out, [source, *styles, content_guidance,
                                    *(style_guidance if isinstance(style_guidance, (list, tuple)) else [style_guidance])])
    guide_tensors = _guide_tensors(content_guidance, style_guidance)
    folder = work_folder(out)
    saved, chosen = _saved_plan(folder), None
    if size_max:  # a run that began with --size max goes on at the size it chose then
        fingerprint, record = _fingerprint(frames, style_ts, name, cfg, video, guide_tensors, size_max=True)
        if saved.get("fingerprint") == fingerprint and isinstance(saved.get("size_max"), int):
            chosen = saved["size_max"]
        else:
            chosen = min(max(frames.info.size), largest_size(frames.info.size, method=name, config=cfg))
        frames.cap(chosen)
    _check_frame_size(frames, None if size_max else cfg.size)
    cfg = make_config(name, cfg, size=max(frames.info.size))  # no larger than the source: flow at the output size
    if not size_max:
        fingerprint, record = _fingerprint(frames, style_ts, name, cfg, video, guide_tensors)
    guides = _guides(guide_tensors, style_ts, frames)
    followup = recipe.later_frames(cfg, video.later_iterations, frames.info.size) if video.temporal_weight > 0 else None
    plan = {"fingerprint": fingerprint, "record": record, "frames": frames.info.frames,
            **({"size_max": chosen} if size_max else {})}
    created = not folder.exists()
    done, seed, precision, threads = _prepare_folder(folder, plan, saved, resume)
    pinned = {}  # what every frame of the video computes with, the same in a resumed process
    if recipe.optimises and cfg.seed is None:  # one seed for the whole video, kept so a resume draws the same
        pinned["seed"] = seed
    if precision is not None and cfg.precision == "auto":  # auto's choice of the first process, kept likewise
        pinned["precision"] = precision
    threads = resumed_threads(threads, cfg.threads, f"'{folder}'")  # the same sums, so the same frames
    if threads != cfg.threads:
        pinned["threads"] = threads
    if pinned:
        cfg = make_config(name, cfg, **pinned)
        followup = None if followup is None else make_config(name, followup, **pinned)
    try:  # a session refused (as for bad inputs found mid-run) leaves nothing behind either
        first = Session(recipe, cfg, style_ts, guidance=guides)
        if not resume:
            _record(folder, precision=first.precision, threads=first.threads)
        later = first if followup is None else Session(recipe, followup, style_ts, guidance=guides,
                                                        extractor=first.extractor)
        _paint_all(frames, folder, done, recipe, first, later, video, callback, step_callback)
    except PainterlyError:
        if not resume:  # bad input found mid-run: leave nothing of this run behind (Ctrl-C keeps it to resume)
            _remove_work(folder, whole=is_video_path(out) or created)
        raise
    note, written = "", frames.info.size
    if is_video_path(out):
        note, written = _encode(folder, out, frames, video)
        shutil.rmtree(folder, ignore_errors=True)
    else:
        (folder / "plan.json").unlink(missing_ok=True)
        if frames.info.has_audio:
            note = "the audio is left out: a folder of PNG frames holds none (name a video file to keep it)"
    return VideoResult(out, frames.info.frames, frames.info.rate, (written[1], written[0]), note)


@dataclass
class VideoPlan:
    """What stylize_video would do, without doing it: the frames it reads, the first frame's plan and, for
    a method that starts each later frame from the previous one, a later frame's (--dry-run prints it)."""

    frames: int
    rate: object                 # frames a second (a Fraction)
    size: tuple[int, int]        # (height, width) painted
    first: RunPlan
    later: Optional[RunPlan]   # None: every frame is painted as the first

    @property
    def seconds(self) -> float:
        each = self.first if self.later is None else self.later
        return self.first.seconds + (self.frames - 1) * each.seconds

    @property
    def problem(self) -> str:
        return self.first.problem or (self.later.problem if self.later is not None else "")

    def describe(self) -> str:
        h, w = self.size
        lines = [f"painterly video plan: {self.frames} frame{'' if self.frames == 1 else 's'} of {w}x{h} at "
                 f"{float(self.rate):g} fps", "the first frame:", *("  " + line for line in
                                                                      self.first.describe().splitlines())]
        if self.later is not None:
            scale = self.later.scales[-1]
            lines.append(f"each later frame: {scale.iterations} iteration{'' if scale.iterations == 1 else 's'} from "
                         f"the previous frame warped onto it, ~{self.later.seconds:.0f} s"
                         + (f" -- does NOT fit: {self.later.problem}" if self.later.problem else ""))
        from tqdm import tqdm

        lines.append(f"estimated time: ~{tqdm.format_interval(self.seconds)} for the video (optical flow not counted)")
        return "\n".join(lines)


def _request(styles, method: Optional[str], config, video: Optional[VideoConfig], options: dict) -> tuple:
    """What stylize_video and plan_video both check and resolve first: (video, config, method name, recipe,
    styles, style tensors, whether size is "max")."""
    video = video or VideoConfig()
    if not isinstance(video, VideoConfig):
        raise PainterlyError(f"video must be a painterly.VideoConfig, got {type(video).__name__}")
    video_fields = sorted(set(options) & {f.name for f in dataclasses.fields(VideoConfig)})
    if video_fields:  # how frames are made, not how each is painted: VideoConfig's
        raise PainterlyError(f"{', '.join(video_fields)} is a video option: give it as "
                             f"video=painterly.VideoConfig({video_fields[0]}=...)")
    size_max = asks_size_max(options)
    if size_max:  # the largest that fits in free memory, chosen once the frames' size is known
        options = {k: v for k, v in options.items() if k != "size"}
    cfg = make_config(method, config, **options)
    name = method_of(cfg) if method is None else method
    recipe = get_method(name)
    if styles is None:  # a trained network holds its styles
        styles = []
    elif isinstance(styles, (str, os.PathLike)) or not isinstance(styles, Sequence):
        styles = [styles]
    style_ts = [as_tensor(s, "style image") for s in styles]
    if not style_ts and recipe.needs_styles:
        raise PainterlyError("at least one style image is needed")
    _refuse_ignored(video, recipe, name, cfg)
    return video, cfg, name, recipe, styles, style_ts, size_max


def plan_video(source: Union[str, os.PathLike], styles: Union[None, ImageLike, Sequence[ImageLike]] = None, *,
               method: Optional[str] = None, config=None, video: Optional[VideoConfig] = None,
               content_guidance: Optional[ImageLike] = None, style_guidance=None, **options) -> VideoPlan:
    """The plan of stylize_video(source, styles, ...) with these options, without running it: the frames
    read (--start, --end, --every), the size painted, the first frame's plan and a later frame's, and the
    time for the whole video. What the run would refuse at once is refused; one refused for memory has
    `problem` set."""
    video, cfg, name, recipe, styles, style_ts, size_max = _request(styles, method, config, video, options)
    style_sizes = [tuple(s.shape[-2:]) for s in style_ts] or None
    frames = VideoSource(source, video.start, video.end, video.every, max_side=None if size_max else cfg.size,
                         fps=video.fps)
    if size_max:
        frames.cap(min(max(frames.info.size), largest_size(frames.info.size, method=name, config=cfg)))
    _check_frame_size(frames, None if size_max else cfg.size)
    _guides(_guide_tensors(content_guidance, style_guidance), style_ts, frames)  # the maps, as the run checks them
    cfg = make_config(name, cfg, size=max(frames.info.size))
    first = plan(frames.info.size, method=name, config=cfg, style_sizes=style_sizes)
    followup = recipe.later_frames(cfg, video.later_iterations, frames.info.size) if video.temporal_weight > 0 \
        else None
    later = None if followup is None else plan(frames.info.size, method=name, config=followup, style_sizes=style_sizes)
    return VideoPlan(frames.info.frames, frames.info.rate, frames.info.size, first, later)


MIN_SIDE = 16  # px a side the methods need (VGG19 reaches relu5_1)


def _refuse_ignored(video: VideoConfig, recipe, name: str, cfg) -> None:
    """The options that steer later frames toward earlier ones, refused where nothing would read them."""
    given = [flag for flag, value in (("--later-iterations", video.later_iterations is not None),
                                      ("--long-term", video.long_term > 0)) if value]
    if not given:
        return
    flags = ", ".join(given)
    if recipe.later_frames(cfg, video.later_iterations, (cfg.size, cfg.size)) is None:
        what = (f"{name} is one forward pass a frame, blended with the previous frame along the flow"
                if not recipe.optimises else f"{name} cannot start a frame from the previous one")
        they = "these belong" if len(given) > 1 else "it belongs"
        raise PainterlyError(f"{flags}: {what}; {they} to the methods that optimise each frame from the last")
    if video.temporal_weight == 0:
        raise PainterlyError(f"{flags}: --temporal-weight 0 paints every frame afresh, as the first; these steer "
                             "the frames that start from the previous one")


def _check_frame_size(frames: VideoSource, size: Optional[int]) -> None:
    """Frames too small for the methods: the video's own (never enlarged), or made so by --size."""
    h, w = frames.info.size
    if min(h, w) >= MIN_SIDE:
        return
    sh, sw = frames.info.source_size
    if (h, w) == (sh, sw):
        raise PainterlyError(f"the frames are {w}x{h} px; each side must be at least {MIN_SIDE} px (a video's "
                             "frames are not enlarged)")
    raise PainterlyError(f"the frames would be {w}x{h} px at --size {size} (the video's are {sw}x{sh}); each side "
                         f"must be at least {MIN_SIDE} px: raise --size")


def _paint_all(frames: VideoSource, folder: Path, done: int, recipe, first: Session, later: Session,
               video: VideoConfig, callback: Optional[FrameCallback], step_callback: Optional[Callback]) -> None:
    """Every frame in order, each saved as it is finished (the first `done` loaded from an earlier run)."""
    start, painted = time.monotonic(), 0
    previous_frame = previous_out = None
    history: list[tuple[torch.Tensor, torch.Tensor]] = []  # (input frame, output) of earlier frames, nearest first
    for index, frame in enumerate(frames):
        t0 = time.monotonic()
        frame_path = folder / f"frame_{index + 1:05d}.png"
        losses: dict = {}
        stopped_early = None
        if index < done:
            result = _load(frame_path)
        else:
            result, stopped_early = _paint(frame, index, previous_frame, previous_out, history, recipe, first, later,
                                           video, step_callback, losses)
            picture = tensor_to_pil(result)
            result = pil_to_tensor(picture)  # the 8-bit frame, as a resumed run will read it back
            save_image(picture, frame_path, quick=True)
            painted += 1
        if callback is not None:
            h, w = frames.info.size
            try:
                callback(FrameInfo(index + 1, frames.info.frames, time.monotonic() - t0, time.monotonic() - start,
                                   losses, index < done, (w, h), painted, stopped_early))
            except StopRun:  # as on Ctrl-C: the finished frames are kept, to resume
                raise KeyboardInterrupt from None
        history.insert(0, (frame, result))
        del history[max(1, _long_term_span(video.long_term)):]
        previous_frame, previous_out = frame, result


def _long_term_span(long_term: int) -> int:
    """How many earlier frames the temporal terms reach back: 1, or 2^N with N long-term frames."""
    return 2 ** long_term


def _paint(frame, index, previous_frame, previous_out, history, recipe, first: Session, later: Session,
           video: VideoConfig, step_callback, losses: dict) -> tuple[torch.Tensor, Optional[str]]:
    """One frame: the first (or an independent one) as an image; later ones along the flow. Returns it and
    why it did fewer iterations than planned, if it did (Session.stopped_early)."""
    def record(info):
        losses.clear()
        losses.update(info.losses)
        if step_callback is not None:
            try:
                step_callback(info)
            except StopRun:  # the video stops as on Ctrl-C: this frame, cut short, is not saved as finished
                raise KeyboardInterrupt from None

    if previous_out is None or video.temporal_weight == 0:  # from the content, or what --init names
        return first.run(frame, init_image=initial_image(recipe, first.config, frame), callback=record,
                         frame=index).cpu(), first.stopped_early
    forward, mask = tracked(previous_frame, frame)  # offsets from this frame into the previous one
    warped = warp(previous_out, forward)
    if later is first:  # a method that cannot start from an image: blend along the flow
        stylised = first.run(frame, callback=record, frame=index).cpu()
        share = video.temporal_weight / (video.temporal_weight + 100.0) * mask
        return share * warped + (1 - share) * stylised, first.stopped_early
    targets = [(warped, mask)]
    if video.long_term > 0:
        earlier = [(warped, mask)]
        for back in (2 ** j for j in range(1, video.long_term + 1)):
            if back <= len(history):
                old_frame, old_out = history[back - 1]
                offsets, old_mask = tracked(old_frame, frame)
                earlier.append((warp(old_out, offsets), old_mask))
        targets = list(zip([w for w, _ in earlier], _long_term_masks([m for _, m in earlier])))
    init = mask * warped + (1 - mask) * frame
    targets = [(w.to(later.device), m.to(later.device)) for w, m in targets]
    weight = video.temporal_weight * recipe.temporal_scale
    return later.run(frame, init_image=init, callback=record, frame=index,
                     extra_terms={TEMPORAL: temporal_term(targets, weight)}).cpu(), later.stopped_early


def _load(path: Path) -> torch.Tensor:
    return pil_to_tensor(split_alpha(open_image(path, "frame"))[0])


def _guide_tensors(content_guidance, style_guidance) -> list[Optional[torch.Tensor]]:
    """The guidance maps as given: [content map or None, style map, ...], or [] with none."""
    if content_guidance is None and style_guidance is None:
        return []
    if isinstance(style_guidance, (str, os.PathLike)) or (style_guidance is not None and not isinstance(style_guidance, Sequence)):
        style_guidance = [style_guidance]
    content_guide = None if content_guidance is None else as_map(content_guidance, "content guidance")
    return [content_guide, *(as_map(g, "style guidance") for g in (style_guidance or []))]


def _guides(guide_tensors: list, styles, frames: VideoSource):
    """The region pairs the session takes (None without guidance), checked against the frames' size."""
    if not guide_tensors:
        return None
    from .guidance import check_guides, paired_regions

    content_guide, style_guides = guide_tensors[0], guide_tensors[1:]
    h, w = frames.info.size
    check_guides(content_guide, style_guides, torch.zeros(1, 3, h, w), styles)
    return paired_regions(content_guide, style_guides)


def _prepare_folder(folder: Path, plan: dict, saved: dict, resume: bool
                    ) -> tuple[int, int, Optional[str], Optional[int]]:
    """The work folder ready for this run (`saved`: the plan an earlier run left in it); returns how many
    frames are already done in it and the video's seed (drawn for a fresh run, the saved one on resume)
    and, on resume, the precision and threads the first process computed with (None: a fresh run)."""
    plan_path = folder / "plan.json"
    if resume:
        if not saved:
            raise PainterlyError(f"nothing to resume: no readable '{plan_path}'")
        if saved.get("fingerprint") != plan["fingerprint"]:
            differs = what_differs(saved.get("record"), plan["record"])
            raise PainterlyError(f"'{folder}' was made from other inputs or options{f' ({differs})' if differs else ''}"
                                 "; resume with the same ones, or run without --resume to start afresh")
        threads = saved.get("threads")
        return (_finished(folder, plan["frames"]), int(saved.get("seed", 0)), saved.get("precision"),
                threads if isinstance(threads, int) else None)
    if saved.get("fingerprint") == plan["fingerprint"]:  # this run's frames: never lost unasked
        done = _finished(folder, plan["frames"])
        if done:
            raise PainterlyError(f"'{folder}' holds {done} finished frame{'s' if done > 1 else ''} of this run: add "
                                 "--resume to continue it, or delete the folder to start afresh")
    if folder.exists():  # an earlier run's frames (only ours: it may be a folder the user named)
        for old in folder.glob("frame_*.png"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    seed = int(torch.randint(0, 2**31 - 1, (1,)))
    write_bytes_atomic(json.dumps({**plan, "seed": seed}).encode(), plan_path)
    return 0, seed, None, None


def _saved_plan(folder: Path) -> dict:
    """The plan a run left in its work folder ({} where there is none, or it cannot be read)."""
    try:
        saved = json.loads((folder / "plan.json").read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _finished(folder: Path, frames: int) -> int:
    """How many frames from the first on the work folder holds finished."""
    done = 0
    while done < frames and (folder / f"frame_{done + 1:05d}.png").exists():
        done += 1
    return done


def _remove_work(folder: Path, whole: bool) -> None:
    """What a failed fresh run wrote: the whole folder (a video's work folder, or a frame folder it made),
    else its frames and plan in a folder that was there before."""
    if whole:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for path in [*folder.glob("frame_*.png"), folder / "plan.json"]:
        path.unlink(missing_ok=True)


def _record(folder: Path, **values) -> None:
    """Add `values` to the work folder's plan, for a resume to read back."""
    plan_path = folder / "plan.json"
    write_bytes_atomic(json.dumps({**json.loads(plan_path.read_text()), **values}).encode(), plan_path)


def _encode(folder: Path, out: Path, frames: VideoSource, video: VideoConfig) -> tuple[str, tuple[int, int]]:
    """The video file from the work folder's frames; returns the note and the (height, width) written."""
    sink = None
    try:
        sink = VideoSink(out, frames.info.size, frames.info.rate, crf=18 if video.crf is None else video.crf,
                         lossless=video.lossless, audio_from=frames)
        for index in range(frames.info.frames):
            sink.write(_load(folder / f"frame_{index + 1:05d}.png"))
        sink.close()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    return sink.note, sink.padded
