#!/usr/bin/python3
"""photo-overlap.py: is any training photo (or a resize / crop of one) a test image?

Run by hand (numpy + OpenCV, /usr/bin/python3), after `make photo-data`:

    /usr/bin/python3 scripts/photo-overlap.py [--selftest] [--testsets DIR] [--threshold T]
                                              [PATH...]

PATH: prepared training images or folders of them (default: data/photos/natural/rgb and
data/photos/train/rgb, those that exist); NAME_384.png is skipped when NAME_640.png is there.
DIR: the test sets (default: $DAED_SHARED/testsets, else ../shared/testsets beside the
repository); every image in every sub-folder is a test image (Set12, Kodak24, CC15, BSD68
where present). The photos are never copied anywhere.

Each pair is compared in two stages, in both directions (which image lies inside the other).
Coarse: on gray thumbnails, the smaller image, resized so its short side is 0.35..1 of a 96 px
thumbnail of the bigger one (14 scales, both blurred by 1 px), slides over the bigger one
(cv2.matchTemplate, TM_CCOEFF_NORMED); the score at a position is min(NCC, NCC of the
band-passed thumbnails + 0.2), as smooth gradients alone correlate with anything. Detail: the
best placement's region of the bigger image (6 % wider on each side) and the smaller image,
band-passed at the scale where the smaller one's short side is 128 px, are matched again
(best shift, zoom 0.96..1.04); the score is min(coarse, detail NCC). So a resize, a crop or a
resized crop of a test image scores high, and a thumbnail-sized coincidence (water, sky) does
not. Measured: resized crops of test images 0.91-0.99 (--selftest); OpenCV's baboon.jpg 0.82
against CC15's d600_iso3200_1, a camera shot of a printed mandrill (so left out of the set);
unrelated pairs at most 0.56 (darknet's kite beach vs kodim06). Threshold 0.7.
--selftest first checks that a resized crop of each test set's first image is found.

Exit status: 0 no overlap, 1 overlaps found (listed), 2 test sets missing or bad arguments.
"""
import argparse
import os
import sys

import cv2
import numpy as np

EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
BIG = 96            # short side of the bigger image's thumbnail (coarse stage)
SCALES = tuple(1.0 - 0.05 * k for k in range(14))  # the smaller one's short side / BIG
BAND_SLACK = 0.2    # the band-passed thumbnails' NCC may be this much lower than the plain one
FINE = 128          # the smaller image's short side in the detail stage
MARGIN = 0.06       # the detail stage's search window around the coarse placement, per side
DETAIL_ZOOMS = (0.96, 0.98, 1.0, 1.02, 1.04)  # and its zooms: the coarse scales are 5 % apart


def images_in(path):
    if os.path.isfile(path):
        return [path]
    out = []
    for dp, _, fn in os.walk(path):
        out += [os.path.join(dp, f) for f in sorted(fn) if f.lower().endswith(EXTS)]
    return sorted(out)


def load_gray(path):
    im = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if im is None:
        raise SystemExit(f"photo-overlap: cannot read {path}")
    return im.astype(np.float32)


def thumb(im, short):
    h, w = im.shape
    f = short / min(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    t = cv2.GaussianBlur(cv2.resize(im, size, interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    return t, t - cv2.GaussianBlur(t, (0, 0), 4.0)  # the thumbnail and its band-pass


def pyramid(im):
    """The thumbnails an image takes part in: as the bigger one (BIG) and as the smaller."""
    return {"im": im, "big": thumb(im, BIG), "small": [thumb(im, BIG * s) for s in SCALES]}


def detail_ncc(region, small, k):
    """Band-passed NCC of small against region (a window of the bigger image around the coarse
    placement, MARGIN wider on each side), both at the scale where small's short side is FINE
    px, at the best shift inside the window: the thumbnails align only to a pixel of 96. k:
    the placed small image's width in the bigger image's pixels, over its own width."""
    h, w = small.shape
    f = FINE / min(h, w)
    ts = thumb(cv2.resize(small, (max(1, round(w * f)), max(1, round(h * f))),
                          interpolation=cv2.INTER_AREA), FINE)[1]
    rh, rw = region.shape
    best = -1.0
    for z in DETAIL_ZOOMS:
        size = (max(ts.shape[1], round(rw * f * z / k)), max(ts.shape[0], round(rh * f * z / k)))
        tr = cv2.GaussianBlur(cv2.resize(region, size, interpolation=cv2.INTER_AREA), (0, 0), 1.0)
        tr = tr - cv2.GaussianBlur(tr, (0, 0), 4.0)
        best = max(best, float(cv2.matchTemplate(tr, ts, cv2.TM_CCOEFF_NORMED).max()))
    return best


def coarse(big, small):
    """Best placement of small (at 14 scales) inside big's thumbnail: (score, x, y, w, h)."""
    ta, ba = big["big"]
    best = (-1.0, 0, 0, 0, 0)
    for tb, bb in small["small"]:
        if tb.shape[0] > ta.shape[0] or tb.shape[1] > ta.shape[1] or bb.std() < 1e-3:
            continue
        r = np.minimum(cv2.matchTemplate(ta, tb, cv2.TM_CCOEFF_NORMED),
                       cv2.matchTemplate(ba, bb, cv2.TM_CCOEFF_NORMED) + BAND_SLACK)
        _, v, _, (x, y) = cv2.minMaxLoc(r)
        if v > best[0]:
            best = (v, x, y, tb.shape[1], tb.shape[0])
    return best


def best_ncc(a, b):
    """min(coarse score, detail NCC) of the better direction: b placed inside a or a inside b.
    The detail check compares the placed image with the region it covers, at FINE px,
    band-passed: a gradient or a dark corner that fits a thumbnail fails it."""
    best = -1.0
    for big, small in ((a, b), (b, a)):
        v, x, y, w, h = coarse(big, small)
        if v < best or w == 0:
            continue
        im = big["im"]
        f = min(im.shape) / BIG  # thumbnail px -> full-size px
        m = MARGIN * max(w, h)
        region = im[max(0, int((y - m) * f)): int((y + h + m) * f),
                    max(0, int((x - m) * f)): int((x + w + m) * f)]
        if min(region.shape) < 8:
            continue
        k = w * f / small["im"].shape[1]
        best = max(best, min(v, detail_ncc(region, small["im"], k)))
    return best


def find_testsets(arg):
    if arg:
        return arg
    if os.environ.get("DAED_SHARED"):
        return os.path.join(os.environ["DAED_SHARED"], "testsets")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(os.path.dirname(here), "shared", "testsets")


def selftest(tests, thr):
    """A resized crop of the first image of each set must be found: else the check is blind."""
    seen, ok = set(), True
    for name, path, im in tests:
        if name in seen:
            continue
        seen.add(name)
        h, w = im.shape
        crop = im[h // 10: h - h // 8, w // 7: w - w // 12]
        probe = cv2.resize(crop, (int(crop.shape[1] * 0.63), int(crop.shape[0] * 0.63)),
                           interpolation=cv2.INTER_AREA)
        score = best_ncc(pyramid(probe), pyramid(im))
        print(f"selftest: resized crop of {name}/{os.path.basename(path)} scores {score:.3f}")
        ok &= score >= thr
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--testsets")
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()

    tdir = find_testsets(args.testsets)
    if not os.path.isdir(tdir):
        print(f"photo-overlap: test sets not found at {tdir} (/work/shared or ../shared is "
              "missing): NOT CHECKED; pass --testsets DIR or set DAED_SHARED", file=sys.stderr)
        return 2
    sets = sorted(d for d in os.listdir(tdir) if os.path.isdir(os.path.join(tdir, d)))
    tests = [(s, p, load_gray(p)) for s in sets for p in images_in(os.path.join(tdir, s))]
    pyrs = [pyramid(t[2]) for t in tests]
    if not tests:
        print(f"photo-overlap: no test images under {tdir}: NOT CHECKED", file=sys.stderr)
        return 2
    print(f"photo-overlap: {len(tests)} test images in {tdir}: " +
          ", ".join(f"{s} ({sum(t[0] == s for t in tests)})" for s in sets))
    for s in ("Set12", "Kodak24", "CC15", "BSD68"):
        if s not in sets:
            print(f"photo-overlap: {s} is not in {tdir}: not checked against it")
    if args.selftest and not selftest(tests, args.threshold):
        print("photo-overlap: selftest failed, the comparison cannot see crops", file=sys.stderr)
        return 2

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = args.paths or [p for p in (os.path.join(root, "data/photos/natural/rgb"),
                                       os.path.join(root, "data/photos/train/rgb"))
                           if os.path.isdir(p)]
    train = [f for p in paths for f in images_in(p)]
    # get-photo-data writes NAME_640.png and NAME_384.png: at 96 px they are the same picture
    train = [f for f in train if not (f.endswith("_384.png") and
                                      os.path.exists(f[:-len("_384.png")] + "_640.png"))]
    if not train:
        print("photo-overlap: no training images given or found (make photo-data first)",
              file=sys.stderr)
        return 2
    matches, worst = [], (-1.0, "", "")
    for f in train:
        pim = pyramid(load_gray(f))
        for (s, p, _), pt in zip(tests, pyrs):
            score = best_ncc(pim, pt)
            if score > worst[0]:
                worst = (score, f, p)
            if score >= args.threshold:
                matches.append((score, f, p))
    for score, f, p in sorted(matches, reverse=True):
        print(f"MATCH {score:.3f}  {f}  ~  {p}")
    print(f"photo-overlap: {len(train)} training images x {len(tests)} test images, "
          f"{len(matches)} overlaps (score >= {args.threshold}); highest score {worst[0]:.3f} "
          f"({os.path.basename(worst[1])} ~ {os.path.basename(worst[2])})")
    return 1 if matches else 0


if __name__ == "__main__":
    sys.exit(main())
