#!/usr/bin/python3
"""kair2daed.py — convert a KAIR DnCNN checkpoint (PyTorch state_dict .pth) into a daed model
file (docs/model-format.md), run by hand; daed itself never needs Python or PyTorch.

KAIR's DnCNN (github.com/cszn/KAIR, models/network_dncnn.py, batch norm merged into the
convolutions: dncnn_15/25/50.pth, dncnn_gray_blind.pth, dncnn_color_blind.pth) is
nn.Sequential `model`: conv 3x3 + ReLU, ..., conv 3x3, all with bias, which predicts the
noise: output = input - model(input). Its state_dict keys are model.<i>.weight/bias with
<i> the conv's index in the Sequential (the ReLUs between count: 0, 2, 4, ..., 32). In daed
that is a residual model whose encoder holds every layer but the last conv
(encoder.<i>.weight with the same <i>) and whose decoder is the last conv (decoder.0.*).

The licence (MIT) asks that its notice goes with the weights: the converter copies the text
of the licence file next to the .pth (LICENSE-KAIR, or --license FILE) into the model file's
__metadata__ "license" field (GET /v1/models/{name} and `dae-model info` show it), and refuses
to convert without one. We do not ship these weights: the output goes to runs/ by default
and never into the project's models/ folder.

  /usr/bin/python3 scripts/kair2daed.py ../shared/weights/kair-dncnn_25.pth
        [--out runs/kair-dncnn-25.safetensors] [--name kair-dncnn-25] [--sigma 25]
        [--license FILE]
Exit status: 0 written, 1 the checkpoint is not a DnCNN of this form, 2 torch or a file is
missing.
"""
import argparse
import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg, code=1):
    print(f"kair2daed: {msg}", file=sys.stderr)
    sys.exit(code)


def load_state_dict(path):
    try:
        import torch
    except ImportError:
        fail("needs PyTorch to read the .pth: apt-get install python3-torch and run with "
             "/usr/bin/python3", 2)
    if not os.path.isfile(path):
        fail(f"{path}: no such file", 2)
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd and not any(k.startswith("model.")
                                                                 for k in sd):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        fail(f"{path}: not a state_dict (a {type(sd).__name__})")
    return {k: v.detach().cpu().float().numpy() for k, v in sd.items()}


def dncnn_convs(sd, path):
    """The convolutions in order: [(index, weight, bias)], checked to be DnCNN's form."""
    import numpy as np
    pat = re.compile(r"^model\.(\d+)\.(weight|bias)$")
    idx = {}
    for k in sd:
        m = pat.match(k)
        if not m:
            fail(f"{path}: tensor {k}: expected only model.<i>.weight/bias (KAIR DnCNN with "
                 f"batch norm merged)")
        idx.setdefault(int(m.group(1)), {})[m.group(2)] = sd[k]
    convs = []
    for n, i in enumerate(sorted(idx)):
        t = idx[i]
        if set(t) != {"weight", "bias"}:
            fail(f"{path}: model.{i}: has {sorted(t)}, expected weight and bias")
        w, b = t["weight"], t["bias"]
        if w.ndim != 4 or w.shape[2:] != (3, 3) or b.shape != (w.shape[0],):
            fail(f"{path}: model.{i}: weight {list(w.shape)}, bias {list(b.shape)}: expected "
                 f"a 3x3 convolution [out, in, 3, 3] with bias [out]")
        if i != 2 * n:
            fail(f"{path}: model.{i} is convolution {n + 1}: expected index {2 * n} (one "
                 f"ReLU between convolutions, KAIR's mode 'CR')")
        if convs and convs[-1][1].shape[0] != w.shape[1]:
            fail(f"{path}: model.{i} takes {w.shape[1]} channels, the previous layer gives "
                 f"{convs[-1][1].shape[0]}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            fail(f"{path}: model.{i}: values that are not finite")
        convs.append((i, w, b))
    if len(convs) < 2:
        fail(f"{path}: {len(convs)} convolution(s), expected a DnCNN (17 for KAIR's)")
    if convs[0][1].shape[1] != convs[-1][1].shape[0]:
        fail(f"{path}: {convs[0][1].shape[1]} channels in, {convs[-1][1].shape[0]} out: a "
             f"residual model needs the same")
    return convs


def conv_layer(w):
    return {"type": "conv2d", "in_channels": int(w.shape[1]), "out_channels": int(w.shape[0]),
            "kernel_size": 3, "stride": 1, "padding": 1}


def add_noise_map(convs):
    """convs with a noise-level-map input channel after the image's: the first convolution
    gets zero weights for it, so the network computes exactly what the checkpoint computed
    until training teaches it to use the map (an initialization for dae-train --init)."""
    import numpy as np
    i, w, b = convs[0]
    c_out, c_in = w.shape[0], w.shape[1]
    w2 = np.concatenate([w, np.zeros((c_out, c_in, 3, 3), dtype=w.dtype)], axis=1)
    return [(i, w2, b)] + list(convs[1:])


def daed_tensors_and_config(convs, name, sigma, source, noise_map=False):
    """(tensors [(daed name, array)], config) for the residual daed model."""
    enc, tensors = [], []
    for i, w, b in convs[:-1]:
        enc += [conv_layer(w), {"type": "relu"}]
        tensors += [(f"encoder.{i}.weight", w), (f"encoder.{i}.bias", b)]
    _, w, b = convs[-1]
    tensors += [("decoder.0.weight", w), ("decoder.0.bias", b)]
    c_in = int(convs[0][1].shape[1])
    c = int(w.shape[0])
    config = {"name": name, "tasks": ["denoise"], "input": [c_in, 40, 40],
              "output": [c, 40, 40], "residual": True, "encoder": enc,
              "decoder": [conv_layer(w)],
              "training": {"source": source, "converted_by": "scripts/kair2daed.py"}}
    if noise_map:
        config["noise_map"] = True
    if sigma is not None:
        # daed's ?sigma= routing (docs/photos.md): the trained noise range, 0-255 scale
        config["corruption"] = {"type": "gaussian255", "sigma": [sigma, sigma],
                                "quantize": False}
    return tensors, config


def write_safetensors(path, tensors, metadata):
    """safetensors: u64 header length, space-padded JSON header, F32 data back to back;
    written to a temporary file, synced, renamed."""
    import numpy as np
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for key, a in tensors:
        a = np.ascontiguousarray(a, dtype="<f4")
        header[key] = {"dtype": "F32", "shape": list(a.shape),
                       "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return off


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pth", help="KAIR DnCNN state_dict (.pth)")
    ap.add_argument("--out", help="daed model file (default runs/<name>.safetensors; never "
                    "models/: these weights are not shipped)")
    ap.add_argument("--name", help="model name in the API (default: from the file name, "
                    "e.g. kair-dncnn-25)")
    ap.add_argument("--sigma", type=float, help="the noise level it was trained for (0-255; "
                    "default: from a name ending in _<sigma>, as dncnn_25.pth); none for a "
                    "blind model")
    ap.add_argument("--license", help="licence text kept in the file (default: LICENSE-KAIR "
                    "or LICENSE next to the .pth)")
    ap.add_argument("--noise-map", action="store_true", help="add a noise-level-map input "
                    "(docs/model-format.md noise_map) with zero weights: the same output until "
                    "fine-tuned (dae-train --init FILE with a noise_map recipe); writes a "
                    "blind model (no --sigma)")
    a = ap.parse_args()

    stem = os.path.splitext(os.path.basename(a.pth))[0]
    name = a.name or re.sub(r"[^A-Za-z0-9._-]", "-", stem).replace("_", "-").strip(".")
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}", name):
        fail(f"name {name!r}: 1-63 characters of A-Z a-z 0-9 . _ -, not starting with '.'")
    sigma = a.sigma
    m = re.search(r"_(\d+)$", stem)
    if sigma is None and m and "blind" not in stem and not a.noise_map:
        sigma = float(m.group(1))
    if sigma is not None and not 0 <= sigma <= 255:
        fail(f"--sigma {sigma}: expected 0 to 255")
    if sigma is not None and sigma == int(sigma):
        sigma = int(sigma)  # [25, 25] in the config, not [25.0, 25.0]
    lic_path = a.license
    if not lic_path:
        d = os.path.dirname(os.path.abspath(a.pth))
        lic_path = next((os.path.join(d, n) for n in ("LICENSE-KAIR", "LICENSE")
                         if os.path.isfile(os.path.join(d, n))), None)
    if not lic_path or not os.path.isfile(lic_path):
        fail(f"no licence file next to {a.pth} (LICENSE-KAIR or LICENSE): KAIR's MIT notice "
             f"must go with the weights; give it with --license FILE", 2)
    license_text = open(lic_path, encoding="utf-8").read()

    out = a.out or os.path.join(ROOT, "runs", f"{name}.safetensors")
    models_dir = os.path.realpath(os.path.join(ROOT, "models"))
    if os.path.realpath(os.path.dirname(os.path.abspath(out))) == models_dir:
        fail(f"{out}: not into the project's models/ folder (these weights are not shipped "
             f"with daed); write elsewhere and serve that folder with daed --models DIR")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    sd = load_state_dict(a.pth)
    convs = dncnn_convs(sd, a.pth)
    if a.noise_map:
        convs = add_noise_map(convs)
    sha = hashlib.sha256(open(a.pth, "rb").read()).hexdigest()
    source = (f"KAIR DnCNN (github.com/cszn/KAIR, MIT), {os.path.basename(a.pth)} "
              f"sha256 {sha}")
    tensors, config = daed_tensors_and_config(convs, name, sigma, source, a.noise_map)
    meta = {"format": "daed-1", "config": json.dumps(config, separators=(",", ":")),
            "license": license_text, "source": source}
    nbytes = write_safetensors(out, tensors, meta)
    n_params = sum(t.size for _, t in tensors)
    print(f"kair2daed: wrote {out}: {name}, {len(convs)} conv 3x3 "
          f"({convs[0][1].shape[0]} channels), {n_params} parameters ({nbytes} bytes), "
          f"residual, sigma {sigma if sigma is not None else 'blind'}; licence from "
          f"{lic_path} in its metadata")


if __name__ == "__main__":
    main()
