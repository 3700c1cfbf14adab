#!/usr/bin/python3
"""kair_parity.py — KAIR's DnCNN-25 in daed: converted weights give PyTorch's answers, and
daed with them reproduces the published Set12 sigma 25 figure.

1. Converts ../shared/weights/kair-dncnn_25.pth with scripts/kair2daed.py into a temporary
   models folder (never models/).
2. Parity: PyTorch's float forward (x - model(x), KAIR's network) against daed's on Set12
   images with sigma 25 float noise (TABLES.md: seed 0, not clipped): `dae-model run --json`
   on the first --parity images (unclipped outputs), and daed over HTTP (JSON pixels,
   ?model=kair-dncnn-25, --precision fp32, in tiles; its answers are clipped to [0,1], so
   PyTorch's are too) on every image; the max absolute difference must be <= 1e-4.
3. PSNR on Set12 at sigma 25: PyTorch, daed float protocol (JSON) and 8-bit protocol (PNG)
   next to the published 30.44 (DnCNN paper; KAIR's own float figure 30.43) and 30.34
   (8-bit, TABLES.md).

Exit status 0: parity holds and every request was answered; 1: a difference above the
tolerance or a failed request; 2: ../shared, torch or a daed program is missing.

  /usr/bin/python3 eval/kair_parity.py [--parity N] [--shared DIR] [--json FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

TOL = 1e-4
SIGMA = 25
PUBLISHED_FLOAT, KAIR_FLOAT, PUBLISHED_8BIT = 30.44, 30.43, 30.34


def torch_dncnn(pth):
    """KAIR's DnCNN from its state_dict: conv+ReLU ... conv, output = x - net(x)."""
    import torch
    import torch.nn as nn
    sd = torch.load(pth, map_location="cpu")
    idx = sorted({int(k.split(".")[1]) for k in sd})
    layers = []
    for n, i in enumerate(idx):
        w = sd[f"model.{i}.weight"]
        layers.append(nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1))
        if n + 1 < len(idx):
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    # KAIR's convolutions sit at 0, 2, 4, ... (ReLUs between), as in this Sequential
    net.load_state_dict({k[len("model."):]: v for k, v in sd.items()})
    net.eval()

    def run(y):
        with torch.no_grad():
            t = torch.from_numpy(y.astype("float32"))[None, None]
            return (t - net(t))[0, 0].numpy().astype("float64")
    return run


def dae_model_run(dae_model, model_file, y, tmp):
    """daed's forward on the whole image, offline: dae-model run --json."""
    src, dst = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
    with open(src, "wb") as f:
        f.write(common.pixels_json(y))
    r = subprocess.run([dae_model, "run", "--json", model_file, src, dst],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"dae-model run failed ({r.returncode}): {r.stderr.strip()}")
    return common.pixels_from_json(json.load(open(dst)))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parity", type=int, default=3, help="Set12 images for dae-model run "
                    "(default 3; HTTP checks every image)")
    ap.add_argument("--shared", help="the shared test material (default ../shared)")
    ap.add_argument("--build", default=os.path.join(common.ROOT, "build"))
    ap.add_argument("--port", type=int, default=0, help="daed port (default: a free one)")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    ap.add_argument("--json", help="write the figures here")
    return ap.parse_args()


def main():
    a = parse_args()
    common.check_python("numpy", "cv2", "torch")
    import glob
    import numpy as np
    import torch
    torch.set_num_threads(a.threads)
    shared = common.shared_dir(a.shared)
    pth = os.path.join(shared, "weights", "kair-dncnn_25.pth")
    if not os.path.isfile(pth):
        common.die_missing(f"{pth} not found (KAIR DnCNN-25, TABLES.md)")
    dae_model = os.path.join(a.build, "dae-model")
    if not os.access(dae_model, os.X_OK):
        common.die_missing(f"{dae_model} not found (make all)")
    files = sorted(glob.glob(os.path.join(shared, "testsets", "Set12", "*.png")))
    if not files:
        common.die_missing(f"no PNG in {shared}/testsets/Set12")

    tmp = tempfile.mkdtemp(prefix="kair-parity-")
    models = os.path.join(tmp, "models")
    model_file = os.path.join(models, "kair-dncnn-25.safetensors")
    os.makedirs(models)
    conv = subprocess.run([sys.executable, os.path.join(common.ROOT, "scripts", "kair2daed.py"),
                           pth, "--out", model_file, "--name", "kair-dncnn-25"],
                          capture_output=True, text=True)
    print(conv.stdout.strip() or conv.stderr.strip())
    if conv.returncode:
        sys.exit(conv.returncode)

    net = torch_dncnn(pth)
    daed = common.Daed()
    rec = dict(images=[], failed=[])
    ok = True
    try:
        daed.start(os.path.join(a.build, "daed"), models, a.port, ["--precision", "fp32"])
        for k, f in enumerate(files):
            name = os.path.basename(f)
            clean = common.read_image(f)
            y = common.gaussian_noisy(clean, SIGMA)
            t = time.perf_counter()
            z_t = net(y)
            r = dict(image=name, torch_seconds=time.perf_counter() - t,
                     psnr_torch=common.psnr(common.to_u8(z_t), clean))
            if k < a.parity:
                z_c = dae_model_run(dae_model, model_file, y, tmp)
                r["maxdiff_dae_model"] = float(np.max(np.abs(z_c - z_t)))
            q = {"model": "kair-dncnn-25", "sigma": SIGMA}
            try:
                data, _, dt = daed.denoise(common.pixels_json(y), "application/json", q,
                                           accept="application/json")
                z_h = common.pixels_from_json(json.loads(data)["image"])
                # daed clips image answers to [0, 1]: compare with PyTorch's clipped
                r.update(maxdiff_http=float(np.max(np.abs(z_h - np.clip(z_t, 0, 1)))),
                         http_seconds=dt,
                         psnr_float=common.psnr(common.to_u8(z_h), clean))
            except common.DaedError as e:
                rec["failed"].append(f"{name} float (JSON): {e}")
            try:
                png = common.encode_image(common.to_u8(y))
                data, _, _ = daed.denoise(png, "image/png", q)
                r["psnr_8bit"] = common.psnr(common.decode_image(data), clean)
            except common.DaedError as e:
                rec["failed"].append(f"{name} 8-bit (PNG): {e}")
            rec["images"].append(r)
            print(f"  {name}: torch {r['psnr_torch']:.2f} dB"
                  + "".join(f", {k} {r[k]:.3g}" for k in ("maxdiff_dae_model", "maxdiff_http",
                                                           "psnr_float", "psnr_8bit") if k in r),
                  file=sys.stderr, flush=True)
    finally:
        daed.stop()
        for p in (model_file, os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")):
            if os.path.exists(p):
                os.remove(p)
        os.rmdir(models)
        os.rmdir(tmp)

    imgs = rec["images"]

    def mean(key):
        v = [r[key] for r in imgs if key in r]
        return (sum(v) / len(v), len(v)) if v else (None, 0)

    def worst(key):
        v = [r[key] for r in imgs if key in r]
        return (max(v), len(v)) if v else (None, 0)

    print(f"\nParity, Set12 sigma {SIGMA} float noise, PyTorch float forward vs daed "
          f"(tolerance {TOL:g}):")
    for key, what in (("maxdiff_dae_model", "dae-model run --json (whole image)"),
                      ("maxdiff_http", "daed HTTP, JSON pixels, --precision fp32 (tiles; "
                                       "both clipped to [0,1])")):
        m, n = worst(key)
        if m is None:
            print(f"  {what}: NOT TESTED (no answer; see the failures below)")
            continue
        good = m <= TOL
        ok &= good
        print(f"  {what}: max |difference| {m:.3g} over {n} images: "
              f"{'ok' if good else 'FAILED'}")
    print(f"\n| Set12, sigma {SIGMA} | images | PSNR (dB) | published |\n|---|---|---|---|")
    for key, what, pub in (("psnr_torch", "PyTorch, KAIR weights, float protocol",
                            f"{PUBLISHED_FLOAT:.2f} (KAIR: {KAIR_FLOAT:.2f})"),
                           ("psnr_float", "daed kair-dncnn-25, float protocol (JSON)",
                            f"{PUBLISHED_FLOAT:.2f}"),
                           ("psnr_8bit", "daed kair-dncnn-25, 8-bit protocol (PNG)",
                            f"{PUBLISHED_8BIT:.2f}")):
        m, n = mean(key)
        print(f"| {what} | {n} | {'-' if m is None else f'{m:.2f}'} | {pub} |")
    for e in rec["failed"]:
        print(f"failed: {e}", file=sys.stderr)
    if a.json:
        rec.update(tolerance=TOL, sigma=SIGMA,
                   summary={k: mean(k)[0] for k in ("psnr_torch", "psnr_float", "psnr_8bit")},
                   maxdiff={k: worst(k)[0] for k in ("maxdiff_dae_model", "maxdiff_http")})
        json.dump(rec, open(a.json, "w"), indent=1)
    return 0 if ok and not rec["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
