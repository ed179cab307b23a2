#!/usr/bin/env python3
"""PyTorch CPU reference for bench/train_step_bench.ts (run through bench/train_step.sh).

Measures, with torch.set_num_threads(THREADS), the same things the tfjs benchmark measures:
  train    ResNet-18 (torchvision structure, 1000-class fc), batch B, cross-entropy on random
           labels, one step = zero_grad + forward + backward + AdamW step + loss.item()
  forward  the same network in eval mode under torch.no_grad(), batch 1 and B
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
    meta["loadavg_end"] = list(os.getloadavg())
    print(f"load average: start {' '.join(f'{v:.2f}' for v in meta['loadavg_start'])}, end {' '.join(f'{v:.2f}' for v in meta['loadavg_end'])}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
