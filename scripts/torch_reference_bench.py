#!/usr/bin/env python3
"""The yolov2-voc network written in plain PyTorch, timed like `yolo2 bench` times its training
iteration: the reference the GPU figures are compared with (issue 14).

Same layer list as darknet's yolov2-voc.cfg (Darknet19's 23 layers, the 3x3 head, the 1x1 passthrough
conv + reorg, 5 anchors x (5 + classes) outputs), batch norm + leaky ReLU 0.1, channels scaled by
--width. One iteration: forward, a stand-in loss (mean squared output: the region loss is yolo2's own
and its share of the iteration is in `yolo2 bench`'s phases), backward, SGD step with momentum.
Mixed precision as torch.amp does it: autocast for the network, GradScaler for fp16.

    python3 scripts/torch_reference_bench.py --device cuda --batch 64 --size 416 --precision bf16
    python3 scripts/torch_reference_bench.py --device cpu --batch 4 --size 128 --width 0.25 --iters 3

Prints one JSON object (images/s, milliseconds per iteration, peak GPU memory, the settings).
"""
import argparse
import json
import time

import torch
import torch.nn as nn

# Darknet19's first 23 layers (yolov2-voc.cfg): (filters, size) convolutions and "M" max pools.
BACKBONE = [(32, 3), "M", (64, 3), "M", (128, 3), (64, 1), (128, 3), "M", (256, 3), (128, 1), (256, 3), "M",
            (512, 3), (256, 1), (512, 3), (256, 1), (512, 3), "M", (1024, 3), (512, 1), (1024, 3), (512, 1),
            (1024, 3)]


def conv(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.1, inplace=True))


class YoloV2(nn.Module):
    def __init__(self, width=1.0, classes=20, anchors=5):
        super().__init__()
        w = lambda c: max(1, int(round(c * width)))
        layers, cin, self.route = [], 3, None
        for i, spec in enumerate(BACKBONE):
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(conv(cin, w(spec[0]), spec[1]))
                cin = w(spec[0])
            if i == 16:  # layer 16 (the 26x26 512-channel map at 416) feeds the passthrough
                self.route, route_c = len(layers), cin
        self.body = nn.ModuleList(layers)
        self.head1 = nn.Sequential(conv(cin, w(1024), 3), conv(w(1024), w(1024), 3))
        self.pass_conv = conv(route_c, w(64), 1)
        self.head2 = conv(w(1024) + 4 * w(64), w(1024), 3)
        self.out = nn.Conv2d(w(1024), anchors * (5 + classes), 1)

    def forward(self, x):
        fine = None
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i + 1 == self.route:
                fine = x
        x = self.head1(x)
        p = self.pass_conv(fine)
        b, c, h, w = p.shape  # darknet's reorg, stride 2 (as the PyTorch ports write it)
        p = p.view(b, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(b, 4 * c, h // 2, w // 2)
        return self.out(self.head2(torch.cat([p, x], 1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--channels-last", type=int, default=1)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="torch.compile the network")
    a = ap.parse_args()

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    elif a.precision in ("tf32", "fp16"):
        raise SystemExit(f"--precision {a.precision} needs --device cuda")
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    torch.manual_seed(0)
    net = YoloV2(a.width).to(dev).to(memory_format=fmt).train()
    step_net = torch.compile(net) if a.compile else net
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(dev.type, enabled=a.precision == "fp16")
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    x = torch.rand(a.batch, 3, a.size, a.size, device=dev).contiguous(memory_format=fmt)

    def iteration():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=low, enabled=low is not None):
            y = step_net(x)
        loss = y.float().square().mean()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(a.warmup):
        iteration()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        iteration()
    sync()
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "images_per_s": a.batch * a.iters / seconds, "ms_per_iteration": 1000 * seconds / a.iters,
        "peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu",
        "batch": a.batch, "size": a.size, "width": a.width, "precision": a.precision,
        "channels_last": bool(a.channels_last), "compile": a.compile, "iters": a.iters,
        "loss": "stand-in (mean squared output)"}))


if __name__ == "__main__":
    main()
