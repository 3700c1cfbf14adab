#!/usr/bin/python3
"""calib_correlated.py — the calibration of daed's route for correlated noise (io/photo.h
DAE_NOISE_CORR_RATIO and DAE_NOISE_CORR_GAIN), on camera photos at full resolution from the
Debian packages `make photo-data` unpacks: no test set is read.

For 11 camera photos, two 512x512 crops each (at 1/3 and 2/3 of the photo), with synthetic
camera noise matched to CC15's statistics (build/bench/photonoise --apply), the same then
JPEG-compressed at q85-95, and white Gaussian noise of 5-40 (a control): the estimates imk1
(daed's white-noise estimate) and imk2 (the same on the crop halved, x2), the default
route's PSNR, and the yc specialists' at a grid of levels with the non-local stage on (as
daed runs them on correlated noise). Prints per noise kind the default route, k x imk2 for
several k (interpolated on the grid), the best level per crop, and the range of imk2 / imk1.

  /usr/bin/python3 eval/calib_correlated.py [--models DIR] [--daed PATH] [--json FILE]
                                            [--photos DIR] [--limit N] [--nonlocal 0|1]
  --limit N: the first N photos only; --nonlocal 0: the specialists without the stage.

Exit status 2 when the photos (make photo-data), a program or a Python package is missing.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PHOTOS = ["lomiri-wallpapers-20.04/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
          "lomiri-wallpapers-16.04/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
          "lomiri-wallpapers-16.04/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
          "lomiri-wallpapers-16.04/usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg",
          "lomiri-wallpapers-16.04/usr/share/backgrounds/Dragonfly_by_Bolly.jpg",
          "lomiri-wallpapers-16.04/usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
          "lomiri-wallpapers-16.04/usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg",
          "digikam-data/usr/share/digikam/about/images/body-background.jpg",
          "forensics-samples-files/usr/share/forensics-samples/original-files/pic2/"
          "IMG_20200608_111614.jpg",
          "lomiri-wallpapers-20.04/usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
          "lomiri-wallpapers-20.04/usr/share/backgrounds/Painting-Colors_by__herobrine7gamer.jpg"]
CAMERA = '{"type":"camera","shot":[0.0002,0.005],"chroma":0.4,"width":0.7}'
NOISES = {"camera": f"[{CAMERA}]",
          "camera+jpeg": f'[{CAMERA},{{"type":"jpeg","p":1,"quality":[85,95]}}]',
          "white": '[{"type":"gaussian","sigma":[5,40]}]'}
LEVELS = [4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 25, 28, 31, 35, 40, 46]
GAINS = [2.0, 2.5, 3.0, 3.5, 4.0]


def imk(x):
    """daed's white-noise estimate (photo.h dae_noise_estimate), on a HxWx3 float image."""
    import cv2
    import numpy as np
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    return float(np.mean([np.median(np.abs(cv2.filter2D(x[:, :, c], -1, k)[1:-1, 1:-1]))
                          / (6 * 0.6745) for c in range(x.shape[2])]))


def half(x):
    import cv2
    return cv2.resize(x, (x.shape[1] // 2, x.shape[0] // 2), interpolation=cv2.INTER_AREA)


def model_for(level):
    return ("photo-dncnn-yc-s15" if level < 20 else "photo-dncnn-yc-s25" if level <= 30
            else "photo-dncnn-yc-s50")


def crops(raw, limit):
    import cv2
    for name in PHOTOS[:limit or None]:
        path = os.path.join(raw, name)
        im = cv2.imread(path)
        if im is None:
            common.die_missing(f"{path} (make photo-data)")
        h, w = im.shape[:2]
        for f in (1 / 3, 2 / 3):
            y0, x0 = int(h * f) - 256, int(w * f) - 256
            yield os.path.basename(name), im[y0:y0 + 512, x0:x0 + 512]


def measure(daed, tmp, photonoise, raw, limit, stage):
    import cv2
    import numpy as np
    rows = []
    for i, (name, crop) in enumerate(crops(raw, limit)):
        clean_png = os.path.join(tmp, "clean.png")
        cv2.imwrite(clean_png, crop)
        clean = crop[:, :, ::-1]
        for kind, spec in NOISES.items():
            noisy_png = os.path.join(tmp, "noisy.png")
            subprocess.run([photonoise, "--apply", spec, clean_png, noisy_png, str(100 + i)],
                           check=True, capture_output=True)
            body = open(noisy_png, "rb").read()
            noisy = common.decode_image(body).astype(np.float64)
            r = dict(photo=name, kind=kind, imk1=imk(noisy), imk2=2 * imk(half(noisy)),
                     rms=float(np.sqrt(np.mean((noisy - clean) ** 2))))
            data, _, _ = daed.denoise(body, "image/png", None)
            r["default"] = common.psnr(common.decode_image(data), clean)
            for lv in LEVELS:
                q = {"model": model_for(lv), "sigma": str(lv), "nonlocal": stage}
                data, _, _ = daed.denoise(body, "image/png", q)
                r[str(lv)] = common.psnr(common.decode_image(data), clean)
            rows.append(r)
            print(f"  {name} {kind}: rms {r['rms']:.2f} imk1 {r['imk1']:.2f} "
                  f"imk2 {r['imk2']:.2f} default {r['default']:.2f}", file=sys.stderr)
    return rows


def report(rows):
    import numpy as np

    def at(r, level):
        return float(np.interp(level, LEVELS, [r[str(v)] for v in LEVELS]))
    print("| noise | crops | imk2/imk1 | default | " +
          " | ".join(f"k {k}" for k in GAINS) + " | best level per crop |")
    print("|---|---|---|---|" + "---|" * (len(GAINS) + 1))
    for kind in NOISES:
        rs = [r for r in rows if r["kind"] == kind]
        ratio = [r["imk2"] / r["imk1"] for r in rs if r["imk1"] > 0]
        cells = [f"{np.mean([at(r, k * r['imk2']) for r in rs]):.2f}" for k in GAINS]
        best = np.mean([max(r[str(v)] for v in LEVELS) for r in rs])
        print(f"| {kind} | {len(rs)} | {min(ratio):.2f}-{max(ratio):.2f} | "
              f"{np.mean([r['default'] for r in rs]):.2f} | " + " | ".join(cells) +
              f" | {best:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=os.path.join(common.ROOT, "models"))
    ap.add_argument("--daed", default=os.path.join(common.ROOT, "build/daed"))
    ap.add_argument("--json", help="write the per-crop records here")
    ap.add_argument("--photos", default=os.path.join(common.ROOT, "data/photos/raw"),
                    help="the unpacked Debian packages of make photo-data")
    ap.add_argument("--limit", type=int, default=0, help="the first N photos only")
    ap.add_argument("--nonlocal", choices=("0", "1"), default="1",
                    help="the non-local stage after the specialists (default 1, as daed)")
    a = ap.parse_args()
    common.check_python("numpy", "cv2")
    if not os.path.isdir(a.photos):
        common.die_missing(f"{a.photos} not found (make photo-data)")
    photonoise = os.path.join(os.path.dirname(a.daed), "bench/photonoise")
    for prog in (a.daed, photonoise):
        if not os.access(prog, os.X_OK):
            common.die_missing(f"{prog} (make all bench)")
    daed = common.Daed()
    daed.start(a.daed, a.models)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = measure(daed, tmp, photonoise, a.photos, a.limit, getattr(a, "nonlocal"))
    finally:
        daed.stop()
    if a.json:
        json.dump(rows, open(a.json, "w"), indent=1)
    report(rows)


if __name__ == "__main__":
    main()
