"""Training speed: painterly's network training step against a plain PyTorch Johnson set-up, in one run.

The baseline is what a careful reader of Johnson et al. (2016) writes in plain PyTorch: the paper's
network (widths 32/64/128, 5 residual blocks, nn.InstanceNorm2d, reflection padding, nearest
upsampling + convolution), fp32 and NCHW, Adam, autograd Gram matrices, and the same VGG19 in bf16
(as the issue measured it) or in fp32 (faster on CPUs without AMX); the ratio is against the faster
plain set-up. painterly's step is `painterly.train` itself (slim widths
16/32/64 by default for the bundled models, channels-last, bf16 autocast over the transformer, the
one-matmul Gram backward). Same batch, crop, photos, layers and weights; steps after a warm-up.

    python benchmarks/train_speed.py --steps 6 --batch 4 --crop 256
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import _common as C  # noqa: E402

PHOTOS = C.ROOT.parent / "shared" / "data" / "photos"


class PlainJohnson(nn.Module):
    """Johnson et al.'s transformation network written the obvious way."""

    def __init__(self) -> None:
        super().__init__()

        def conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride))

        def block(c: int) -> nn.Sequential:
            return nn.Sequential(conv(c, c, 3), nn.InstanceNorm2d(c, affine=True), nn.ReLU(),
                                 conv(c, c, 3), nn.InstanceNorm2d(c, affine=True))

        self.down = nn.Sequential(conv(3, 32, 9), nn.InstanceNorm2d(32, affine=True), nn.ReLU(),
                                  conv(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True), nn.ReLU(),
                                  conv(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True), nn.ReLU())
        self.blocks = nn.ModuleList(block(128) for _ in range(5))
        self.up1 = nn.Sequential(conv(128, 64, 3), nn.InstanceNorm2d(64, affine=True), nn.ReLU())
        self.up2 = nn.Sequential(conv(64, 32, 3), nn.InstanceNorm2d(32, affine=True), nn.ReLU())
        self.out = conv(32, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        for b in self.blocks:
            x = x + b(x)
        x = self.up1(F.interpolate(x, scale_factor=2, mode="nearest"))
        x = self.up2(F.interpolate(x, scale_factor=2, mode="nearest"))
        return self.out(x)


def plain_gram(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def baseline_steps(steps: int, batch: int, crop: int, style: torch.Tensor, bf16_net: bool,
                   vgg_precision: str = "bf16") -> list[float]:
    from painterly.features import FeatureExtractor
    from painterly.training import TrainConfig, find_photos, sample_batch

    config = TrainConfig(batch=batch, crop=crop)
    layers = sorted(set(config.style_layers) | set(config.content_layers))
    vgg = FeatureExtractor.vgg19(last_layer="relu5_1", precision=vgg_precision)
    content_weight, style_weight = config.content_weight_for(config.loss), config.style_weight_for(config.loss)
    photos, _ = find_photos(PHOTOS, crop)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        targets = {l: plain_gram(f.float()) for l, f in vgg(style, config.style_layers).items()}
    net = PlainJohnson()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        x = sample_batch(photos, config, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_net):
            out = net(x).float()
        with torch.no_grad():
            content = vgg(x, config.content_layers)
        feats = vgg(out, layers)
        loss = sum(content_weight * F.mse_loss(feats[l].float(), content[l].float())
                   for l in config.content_layers)
        loss = loss + sum(style_weight * F.mse_loss(plain_gram(feats[l].float()), targets[l].expand(batch, -1, -1))
                          for l in config.style_layers)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return times


def painterly_steps(steps: int, batch: int, crop: int, style: torch.Tensor, widths: tuple[int, ...]) -> list[float]:
    import painterly

    times: list[float] = []
    last = [time.perf_counter()]

    def tick(step: int, total: int, losses: dict, images_s: float) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    with tempfile.TemporaryDirectory() as tmp:
        config = painterly.TrainConfig(steps=steps, batch=batch, crop=crop, widths=widths, preview_every=10**6)
        last[0] = time.perf_counter()
        painterly.train([style], PHOTOS, Path(tmp) / "m.safetensors", config, style_names=["style"], callback=tick)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=256)
    args = ap.parse_args()
    if not PHOTOS.is_dir():
        sys.exit(f"no training photos at {PHOTOS}")
    from painterly.image import as_tensor, fit_long_side, resize

    torch.manual_seed(0)
    style = as_tensor(C.STYLE)
    style = resize(style, fit_long_side(*style.shape[-2:], 384))
    n = args.steps + args.warmup
    runs = {
        "plain PyTorch Johnson (fp32 net, bf16 VGG)": baseline_steps(n, args.batch, args.crop, style, False),
        "plain PyTorch Johnson, net in bf16 autocast too": baseline_steps(n, args.batch, args.crop, style, True),
        "plain PyTorch Johnson, fp32 throughout": baseline_steps(n, args.batch, args.crop, style, False, "fp32"),
        "painterly, Johnson widths 32,64,128": painterly_steps(n, args.batch, args.crop, style, (32, 64, 128)),
        "painterly, starry_night's widths 16,32,128": painterly_steps(n, args.batch, args.crop, style, (16, 32, 128)),
        "painterly, slim widths 16,32,64": painterly_steps(n, args.batch, args.crop, style, (16, 32, 64)),
    }
    base = min(statistics.median(t[args.warmup:]) for name, t in runs.items() if name.startswith("plain"))
    rows = []
    for name, times in runs.items():
        s = statistics.median(times[args.warmup:])
        rows.append([name, f"{s:.2f}", f"{args.batch / s:.2f}", f"{base / s:.2f}x"])
    print(f"# training step, batch {args.batch}, {args.crop} px crops, median of {args.steps} steps after "
          f"{args.warmup} warm-up; {torch.get_num_threads()} threads")
    print(C.table(rows, ["set-up", "s/step", "images/s", "speed vs the fastest plain"]))


if __name__ == "__main__":
    main()
