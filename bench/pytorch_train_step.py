#!/usr/bin/env python3
"""PyTorch CPU reference for bench/train_step_bench.ts (run through bench/train_step.sh).

Measures, with torch.set_num_threads(THREADS), the same things the tfjs benchmark measures:
  train    ResNet-18 (torchvision structure, 1000-class fc), batch B, cross-entropy on random
           labels, one step = zero_grad + forward + backward + AdamW step + loss.item()
  forward  the same network in eval mode under torch.no_grad(), batch 1 and B
  extractor  (with --extractor CATEGORIES,VERBS) a PyTorch copy of the tiny HOI extractor's step
           (configs/extractor/tiny.yaml: ResNet-18 x0.25 features c2..c5, FPN neck to stride 4
           with 32 channels, six head branches of 32 channels, CenterNet focal loss on the two
           heatmaps, masked L1 at 32 gathered cells on the four regressions, clip by global norm
           10, AdamW), at 128 px and batch B, on random targets: the same layers, shapes and
           FLOPs as the tfjs step, not its exact numbers
Times are medians over --steps runs after --warmup runs. Prints a short table and, with
--json FILE, writes the results for the tfjs benchmark to compare against.

torchvision is used when it is installed (torchvision.models.resnet18); otherwise the same
architecture is built here (BasicBlock, [2, 2, 2, 2], torchvision's init), which has the same
parameters and the same FLOPs.
"""
import argparse
import json
import os
import platform
import re
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 without torchvision: same modules, names and init."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, 2, 1)
        self.layer2 = self._make_layer(128, 2, 2)
        self.layer3 = self._make_layer(256, 2, 2)
        self.layer4 = self._make_layer(512, 2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(planes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNetFeatures(ResNet18):
    """ResNet-18 at a width multiplier (stage widths round(64 w / 8) * 8), returning c2..c5."""

    def __init__(self, widths):
        nn.Module.__init__(self)
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(widths[0], 2, 1)
        self.layer2 = self._make_layer(widths[1], 2, 2)
        self.layer3 = self._make_layer(widths[2], 2, 2)
        self.layer4 = self._make_layer(widths[3], 2, 2)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return c2, c3, c4, self.layer4(c4)


class TinyPointHoi(nn.Module):
    """src/models/hoi/point_hoi.ts at configs/extractor/tiny.yaml's sizes: backbone, FPN neck, point head."""

    def __init__(self, categories, verbs, width=0.25, neck=32, head=32):
        super().__init__()
        widths = [max(8, round(b * width / 8) * 8) for b in (64, 128, 256, 512)]
        self.backbone = ResNetFeatures(widths)
        self.laterals = nn.ModuleList(nn.Conv2d(c, neck, 1) for c in widths)
        self.fuse = nn.Sequential(nn.Conv2d(neck, neck, 3, padding=1, bias=False), nn.BatchNorm2d(neck), nn.ReLU(inplace=True))
        self.outs = {"object_heatmap": categories, "object_size": 2, "object_offset": 2,
                     "interaction_heatmap": verbs, "interaction_offset": 2, "displacement": 4}
        self.branches = nn.ModuleDict()
        for key, n in self.outs.items():
            last = nn.Conv2d(head, n, 1)
            if key.endswith("heatmap"):
                nn.init.constant_(last.bias, -2.19)
            self.branches[key] = nn.Sequential(nn.Conv2d(neck, head, 3, padding=1), nn.ReLU(inplace=True), last)

    def forward(self, x):
        c2, c3, c4, c5 = self.backbone(x)
        p = self.laterals[3](c5)
        for lat, c in ((self.laterals[2], c4), (self.laterals[1], c3), (self.laterals[0], c2)):
            p = lat(c) + F.interpolate(p, scale_factor=2, mode="nearest")
        p = self.fuse(p)
        return {k: b(p) for k, b in self.branches.items()}


def focal_loss(logits, gt):
    """losses.ts focalLoss: penalty-reduced focal loss from clamped logits."""
    x = logits.clamp(-9.2102, 9.2102)
    p = torch.sigmoid(x)
    pos = (gt == 1).float()
    neg = (gt < 1).float()
    pos_loss = (-F.softplus(-x) * (1 - p) ** 2 * pos).sum()
    neg_loss = (-F.softplus(x) * p ** 2 * (1 - gt) ** 4 * neg).sum()
    return -(pos_loss + neg_loss) / pos.sum().clamp(min=1)


def reg_l1(pred, index, mask, target):
    """losses.ts regL1Loss: the map read at `index` (flat cells), masked mean absolute error."""
    b, k = pred.shape[0], pred.shape[1]
    flat = pred.flatten(2).transpose(1, 2)  # [B, h*w, K]
    got = flat.gather(1, index.unsqueeze(2).expand(-1, -1, k))  # [B, M, K]
    return ((got - target).abs() * mask.unsqueeze(2)).sum() / (mask.sum() * k).clamp(min=1)


def extractor_step_times(categories, verbs, batch, warmup, steps, gen):
    """ms per training step of the tiny extractor at 128 px (grid 32), targets random but fixed."""
    model = TinyPointHoi(categories, verbs)
    model.train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=0.003)
    size, grid, m = 128, 32, 32
    x = torch.randn(batch, 3, size, size, generator=gen)

    def heat(c):
        h = torch.rand(batch, c, grid, grid, generator=gen) ** 8
        h.view(-1)[torch.randint(0, h.numel(), (batch * 4,), generator=gen)] = 1.0
        return h

    t = {
        "object_heatmap": heat(categories), "interaction_heatmap": heat(verbs),
        "object_index": torch.randint(0, grid * grid, (batch, m), generator=gen),
        "interaction_index": torch.randint(0, grid * grid, (batch, m), generator=gen),
        "object_mask": (torch.arange(m) < 4).float().expand(batch, m),
        "interaction_mask": (torch.arange(m) < 2).float().expand(batch, m),
    }
    reg = {k: torch.rand(batch, m, n, generator=gen) for k, n in (("object_size", 2), ("object_offset", 2), ("interaction_offset", 2), ("displacement", 4))}

    def step():
        opt.zero_grad(set_to_none=True)
        o = model(x)
        loss = (focal_loss(o["object_heatmap"], t["object_heatmap"]) + focal_loss(o["interaction_heatmap"], t["interaction_heatmap"])
                + 0.1 * reg_l1(o["object_size"], t["object_index"], t["object_mask"], reg["object_size"])
                + reg_l1(o["object_offset"], t["object_index"], t["object_mask"], reg["object_offset"])
                + reg_l1(o["interaction_offset"], t["interaction_index"], t["interaction_mask"], reg["interaction_offset"])
                + reg_l1(o["displacement"], t["interaction_index"], t["interaction_mask"], reg["displacement"]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        return loss.item()

    return median_ms(step, warmup, steps)


def build_resnet18():
    try:
        import torchvision  # noqa: F401
        from torchvision.models import resnet18

        return resnet18(num_classes=1000), "torchvision.models.resnet18"
    except Exception:  # not installed, or a broken install: the in-script copy is the same network
        return ResNet18(1000), "in-script torchvision-style ResNet-18"


def median_ms(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def blas_lines():
    """The first lines of torch.__config__.show() and its BLAS/LAPACK/oneDNN build settings."""
    lines = [l.strip() for l in torch.__config__.show().splitlines() if l.strip()]
    head = [l for l in lines if not l.startswith("- Build settings")][:6]
    settings = " ".join(l for l in lines if l.startswith("- Build settings"))
    picked = [m.group(0) for m in re.finditer(r"\b(BLAS_INFO|LAPACK_INFO|USE_MKLDNN|USE_OPENMP)=[^,\s]*", settings)]
    picked.append(f"mkldnn (oneDNN) conv available: {torch.backends.mkldnn.is_available()}")
    return head, picked


def openblas_library():
    """Which libblas.so.3 the process mapped (Debian's alternatives pick OpenBLAS or the reference BLAS)."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() and "/" in line})
        return libs
    except OSError:
        return []


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="128,224")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="measured training steps per size")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--forward-runs", type=int, default=10)
    p.add_argument("--extractor", help="CATEGORIES,VERBS: also time the tiny extractor step (see above)")
    p.add_argument("--json", help="write results here")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sizes = [int(s) for s in a.sizes.split(",") if s]
    head, blas = blas_lines()
    meta = {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "config_head": head,
        "config_blas": blas,
        "blas_libraries": openblas_library(),
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ},
        "cpu": platform.processor() or platform.machine(),
        "loadavg_start": list(os.getloadavg()),
    }
    model, source = build_resnet18()
    meta["model"] = source
    meta["params"] = sum(p.numel() for p in model.parameters())
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {source} ({meta['params'] / 1e6:.2f} M parameters)")
    for l in head:
        print(f"  config: {l}")
    print(f"  config: {', '.join(blas)}")
    print(f"  BLAS libraries mapped: {', '.join(meta['blas_libraries']) or 'none found'}")
    if meta["openblas_env"]:
        print(f"  BLAS environment: {meta['openblas_env']}")

    # Weight decay on weight matrices and kernels only, as the tfjs side (rank >= 2).
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    results = []
    gen = torch.Generator().manual_seed(0)
    for size in sizes:
        x = torch.randn(a.batch, 3, size, size, generator=gen)
        y = torch.randint(0, 1000, (a.batch,), generator=gen)
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        times = median_ms(step, a.warmup, a.steps)
        med = statistics.median(times)
        results.append({"kind": "train", "size": size, "batch": a.batch, "ms": times, "median_ms": med})
        print(f"train   {size:>3} px batch {a.batch}: {med:8.1f} ms/step  {1000 * a.batch / med:7.2f} images/s  (runs {', '.join(f'{t:.0f}' for t in times)})")

    model.eval()
    with torch.no_grad():
        for size in sizes:
            for batch in sorted({1, a.batch}):
                x = torch.randn(batch, 3, size, size, generator=gen)
                times = median_ms(lambda: model(x), 2, a.forward_runs)
                med = statistics.median(times)
                results.append({"kind": "forward", "size": size, "batch": batch, "ms": times, "median_ms": med})
                print(f"forward {size:>3} px batch {batch}: {med:8.1f} ms  {1000 * batch / med:7.2f} images/s")
    if a.extractor:
        categories, verbs = (int(v) for v in a.extractor.split(","))
        times = extractor_step_times(categories, verbs, a.batch, a.warmup, a.steps, gen)
        med = statistics.median(times)
        results.append({"kind": "extractor", "size": 128, "batch": a.batch, "ms": times, "median_ms": med})
        print(f"extractor 128 px batch {a.batch}: {med:8.1f} ms/step  {1000 * a.batch / med:7.2f} images/s  (tiny point_hoi, {categories} categories, {verbs} verbs)")
    meta["loadavg_end"] = list(os.getloadavg())
    print(f"load average: start {' '.join(f'{v:.2f}' for v in meta['loadavg_start'])}, end {' '.join(f'{v:.2f}' for v in meta['loadavg_end'])}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
