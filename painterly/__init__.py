"""painterly: neural style transfer that is fast on a CPU.

    import painterly
    image = painterly.stylize("photo.jpg", ["starry_night.jpg"], size=512, iterations=200)
    image.save("out.png")

Everything importable from `painterly` itself is the public API; the CLI and the web app use
nothing else.
"""

import os

# The same seed and options must give the same image, and a resumed run the same image as an
# uninterrupted one. MKL's matrix products otherwise pick code paths by memory alignment, which
# varies from run to run, and the optimisers amplify those last-bit differences into visibly
# different pictures. Strict conditional numerical reproducibility costs little (docs/benchmarks.md)
# and takes effect as long as no matrix product ran before this import.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from .api import (DEFAULT_METHOD, available_methods, example_images, get_method, largest_size, make_config,  # noqa: E402
                  method_clash, method_for, method_of, method_options, plan, preflight, stylize)
from .cli_args import command_line  # noqa: E402
from .checkpoint import (Checkpointer, Interrupted, default_path as default_checkpoint_path,  # noqa: E402
                         install_signal_handlers, install_stop_handlers)
from .config import RANDOM_SEED, CommonConfig, OptimisationConfig, option  # noqa: E402
from .errors import DamagedImageError, ImageTooLargeError, NotAnImageError, PainterlyError  # noqa: E402
from .figures import loss_curve, preview_sheet, side_by_side  # noqa: E402
from .hardware import free_memory_bytes, usable_cpus  # noqa: E402
from .image import check_writable, open_image, refuse_overwriting_inputs, save_image, split_alpha, tensor_to_pil, write_bytes_atomic  # noqa: E402
from .decoder_training import DecoderTrainConfig, train_decoder  # noqa: E402
from .methods.adain import AdainConfig  # noqa: E402
from .methods.feedforward import NetworkConfig, load_model_by_name as load_model  # noqa: E402
from .methods.gatys import GatysConfig  # noqa: E402
from .methods.strotss import StrotssConfig  # noqa: E402
from .methods.wct import WctConfig  # noqa: E402
from .progress import LossHistory, ProgressBar, SaveEvery, StepInfo, StopRun, combine  # noqa: E402
from .nets.io import (bundled_decoders, bundled_file, bundled_models, checkpoint_advice, is_decoder_file,  # noqa: E402
                      is_network_file, load_decoder)
from .recipe import Recipe, RunContext, load_plugins, register, unregister  # noqa: E402
# what a new method's recipe is written with (README, "Adding a method")
from .features import FeatureExtractor, channels_of, check_layers  # noqa: E402
from .image import as_tensor, resize  # noqa: E402
from .losses import LossTerms  # noqa: E402
from .optimize import make_optimizer  # noqa: E402
from .param import LaplacianPyramidImage, PixelImage  # noqa: E402
from .schedule import Scale, estimate_peak_bytes, plan_scales  # noqa: E402
from .training import TrainConfig, train  # noqa: E402
from .flow import warping_error  # noqa: E402
from .video import FrameInfo, VideoConfig, VideoPlan, VideoResult, plan_video, stylize_video  # noqa: E402
from .videoio import work_folder as video_work_folder  # noqa: E402
from .batch import (BatchJob, JobResult, LocalExecutor, check_devices, check_jobs, expand_images, options_for, pair_jobs,  # noqa: E402
                    read_manifest, run_batch)
from .batch_ray import RayExecutor  # noqa: E402  (imports ray only when made)

__all__ = [
    "stylize", "preflight", "plan", "largest_size", "free_memory_bytes", "usable_cpus", "make_config", "available_methods", "get_method", "method_of", "method_for", "method_clash", "DEFAULT_METHOD",
    "GatysConfig", "StrotssConfig", "CommonConfig", "OptimisationConfig", "option", "RANDOM_SEED", "Recipe", "register", "unregister", "load_plugins",
    "RunContext", "FeatureExtractor", "check_layers", "channels_of", "LossTerms", "Scale", "plan_scales", "estimate_peak_bytes", "make_optimizer",
    "PixelImage", "LaplacianPyramidImage", "video_work_folder", "as_tensor", "resize",
    "method_options", "example_images", "command_line", "write_bytes_atomic",
    "PainterlyError", "NotAnImageError", "DamagedImageError", "ImageTooLargeError", "StepInfo", "StopRun", "ProgressBar", "LossHistory", "SaveEvery", "combine",
    "Checkpointer", "Interrupted", "install_stop_handlers", "install_signal_handlers", "default_checkpoint_path",
    "open_image", "save_image", "split_alpha", "check_writable", "refuse_overwriting_inputs", "side_by_side", "preview_sheet", "loss_curve", "tensor_to_pil",
    "NetworkConfig", "TrainConfig", "train", "load_model", "bundled_models",
    "AdainConfig", "WctConfig", "DecoderTrainConfig", "train_decoder", "load_decoder",
    "bundled_decoders", "bundled_file", "checkpoint_advice", "is_decoder_file", "is_network_file",
    "stylize_video", "plan_video", "VideoConfig", "VideoPlan", "VideoResult", "FrameInfo", "warping_error",
    "BatchJob", "JobResult", "LocalExecutor", "RayExecutor", "check_devices", "check_jobs", "options_for", "expand_images", "pair_jobs", "read_manifest", "run_batch",
]
__version__ = "0.1.0"
