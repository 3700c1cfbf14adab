#!/usr/bin/python3
"""torch_speed.py — the PyTorch side of bench/train-speed.c: the same networks, batches and
measurements, printed as `RESULT <key> <value> <unit>` lines with the same keys.

Run with Debian's /usr/bin/python3 (torch 1.13 CPU). OMP_WAIT_POLICY=PASSIVE is set before
torch is imported (../shared/PROTOCOL.md §1: torch's libgomp pool and OpenBLAS's pthread pool
otherwise spin against each other on 2 cores). Threads: --threads 2 (default) or a list.
The conv DAE's transposed convolutions use the protocol reference's conv2d + pixel_shuffle
form (FastConvT in ../shared/reference/common.py), which is how PyTorch's s/epoch in
PROTOCOL.md was measured; --reference DIR points at that directory."""
import argparse
import os
import sys
import time

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", default="2")
ap.add_argument("--only", choices=("mlp", "conv", "photo"))
ap.add_argument("--quick", action="store_true")
ap.add_argument("--reference", default=os.environ.get("DAED_REFERENCE", "/work/shared/reference"))
args = ap.parse_args()
sys.path.insert(0, args.reference)
import common as R  # noqa: E402


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def result(key, v, unit):
    print(f"RESULT {key:<34} {v:10.4f} {unit}  (load {load1():.2f})", flush=True)


def dncnn(depth, ch, in_ch):
    layers = [nn.Conv2d(in_ch, ch, 3, padding=1), nn.ReLU(inplace=True)]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True)]
    layers += [nn.Conv2d(ch, in_ch, 3, padding=1)]
    body = nn.Sequential(*layers)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, y):
            return y - self.body(y)
    return Residual()


def time_steps(model, x, target, steps, reps, cpu):
    """Median wall seconds per step; cpu[0] = least process CPU seconds per step (all
    threads), which a loaded machine inflates much less than the wall time."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        opt.step()
    for _ in range(3):
        step()
    res, cpus = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step()
        res.append((time.perf_counter() - t0) / steps)
        cpus.append((time.process_time() - c0) / steps)
    cpu[0] = min(cpus)
    return sorted(res)[len(res) // 2]


def main():
    threads = [int(t) for t in args.threads.split(",")]
    q = args.quick
    torch.manual_seed(7)
    x28, t28 = torch.rand(128, 1, 28, 28), torch.rand(128, 1, 28, 28)
    for t in threads:
        torch.set_num_threads(t)
        cpu = [0.0]
        if args.only in (None, "mlp"):
            s = time_steps(R.MLPAE((784, 512, 128, 512, 784)), x28, t28, 5 if q else 20, 1 if q else 3, cpu)
            result(f"mlp.train.t{t}.s_per_epoch", s * 469, "s/epoch")
            result(f"mlp.train.t{t}.cpu_s_per_epoch", cpu[0] * 469, "cpu-s/epoch")
        if args.only in (None, "conv"):
            s = time_steps(R.ConvDAE(), x28, t28, 5 if q else 20, 1 if q else 3, cpu)
            result(f"conv.train.t{t}.s_per_epoch", s * 469, "s/epoch")
            result(f"conv.train.t{t}.cpu_s_per_epoch", cpu[0] * 469, "cpu-s/epoch")
        if args.only in (None, "photo"):
            for in_ch, nm in ((1, "photo_gray"), (3, "photo_rgb")):
                net = dncnn(8, 32, in_ch)
                x, tg = torch.rand(64, in_ch, 40, 40), torch.rand(64, in_ch, 40, 40)
                s = time_steps(net, x, tg, 2 if q else 6, 1 if q else 3, cpu)
                result(f"{nm}.train.t{t}.patches_per_s", 64 / s, "patches/s")
                result(f"{nm}.train.t{t}.patches_per_cpu_s", 64 / cpu[0], "patches/cpu-s")
                img = torch.rand(1, in_ch, 512, 512)
                with torch.no_grad():
                    net(img)
                    best, bcpu = 1e30, 1e30
                    for _ in range(1 if q else 3):
                        t0, c0 = time.perf_counter(), time.process_time()
                        net(img)
                        best = min(best, time.perf_counter() - t0)
                        bcpu = min(bcpu, time.process_time() - c0)
                result(f"{nm}.infer.t{t}.s_per_mpx", best / (512 * 512 * 1e-6), "s/Mpx")
                result(f"{nm}.infer.t{t}.cpu_s_per_mpx", bcpu / (512 * 512 * 1e-6), "cpu-s/Mpx")


if __name__ == "__main__":
    main()
