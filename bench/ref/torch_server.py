#!/usr/bin/python3
"""torch_server.py — the PyTorch reference server of bench/serve.sh (FastAPI + uvicorn).

    /usr/bin/python3 bench/ref/torch_server.py --models DIR [--port 8091] [--workers 1]
                                               [--threads N] [--png-level 1]

Debian 12 packages: python3-torch python3-fastapi python3-uvicorn python3-pil python3-numpy.
Loads every daed model file in DIR (safetensors, __metadata__ config as in
docs/model-format.md) into an equivalent nn.Module — the same tensors, so both servers run
the same network — and serves daed's routes for the benchmark:

    POST /v1/denoise  PNG/JPEG body -> PNG; JSON {"images":[{"png":b64}..]} (a batch, one
                      forward call) -> {"model","images":[{"width","height","channels","png"}]}
    POST /v1/score    PNG/JPEG body -> {"model","score","score_kind","threshold","is_anomaly",
                      "percentile"}; the batch JSON -> {"model","results":[...]}
    GET  /healthz     {"status":"ok"}

?model=NAME picks a model; the default of a task is the first model by name declaring it
(daed's rule). Each of --workers processes (forked, sharing one listening socket) loads all models; torch
uses --threads intra-op threads per process (default 1: measured here under load, 2 threads
on the 2 CPUs gave 22 req/s at 41 ms per 28x28 image against 1400 req/s with 1 thread). The handlers are `async def` and run
the forward pass inline, as a straightforward FastAPI service does: one request at a time
per worker process.
"""
import argparse
import base64
import io
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn



# ---------------------------------------------------------------- model files

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name}: dtype {t['dtype']}, expected F32")
        b, e = t["data_offsets"]
        arr = np.frombuffer(data, dtype="<f4", count=(e - b) // 4, offset=base + b)
        tensors[name] = torch.from_numpy(arr.reshape(t["shape"]).copy())
    return tensors, meta


def make_layer(c):
    t = c["type"]
    if t == "linear":
        return nn.Linear(c["in_features"], c["out_features"])
    if t == "conv2d":
        return nn.Conv2d(c["in_channels"], c["out_channels"], c["kernel_size"],
                         stride=c.get("stride", 1), padding=c.get("padding", 0))
    if t == "conv_transpose2d":
        return nn.ConvTranspose2d(c["in_channels"], c["out_channels"], c["kernel_size"],
                                  stride=c.get("stride", 1), padding=c.get("padding", 0),
                                  output_padding=c.get("output_padding", 0))
    if t == "relu":
        return nn.ReLU()
    if t == "leaky_relu":
        return nn.LeakyReLU(c.get("negative_slope", 0.01))
    if t == "tanh":
        return nn.Tanh()
    if t == "sigmoid":
        return nn.Sigmoid()
    if t == "identity":
        return nn.Identity()
    if t == "upsample":
        mode = c.get("mode", "nearest")
        return nn.Upsample(scale_factor=2, mode=mode,
                           align_corners=False if mode == "bilinear" else None)
    if t == "flatten":
        return nn.Flatten()
    if t == "unflatten":
        return nn.Unflatten(1, tuple(c["unflattened_size"]))
    raise ValueError(f"layer type {t} unknown")


class DAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoder = nn.Sequential(*[make_layer(c) for c in cfg["encoder"]])
        self.decoder = nn.Sequential(*[make_layer(c) for c in cfg["decoder"]])
        self.residual = bool(cfg.get("residual", False))

    def forward(self, x):
        y = self.decoder(self.encoder(x))
        return x - y if self.residual else y


def parse_score(spec):
    """daed's score kinds that need only the network (include/daed/core/score.h): "mse",
    "bmse<sigma>" (squared error of the residual blurred with a Gaussian of that sigma) and
    either with "@top<K>" (mean of the K largest values instead of all). Scores with a kNN
    bank ("+knn...") are not implemented here: the model is refused for /v1/score."""
    kind = spec.split("+")[0]
    if "+" in spec:
        raise ValueError(f"score {spec}: the reference implements mse and bmse[@topK] only")
    base, _, top = kind.partition("@")
    if base == "mse":
        sigma = 0.0
    elif base.startswith("bmse"):
        sigma = float(base[4:] or 1)
    else:
        raise ValueError(f"score {spec}: unknown kind")
    k = int(top[3:]) if top.startswith("top") else 0
    return spec, sigma, k


def gaussian_blur(e, sigma):
    """Separable Gaussian blur of (N,C,H,W), radius ceil(3 sigma), reflect-101 borders (the
    kernel of daed's dae_score_blur)."""
    r = int(np.ceil(3.0 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-t * t / (2.0 * sigma * sigma))
    g = torch.tensor(g / g.sum(), dtype=e.dtype)
    n, c, h, w = e.shape
    x = e.reshape(n * c, 1, h, w)
    x = torch.nn.functional.pad(x, (r, r, 0, 0), mode="reflect")
    x = torch.nn.functional.conv2d(x, g.view(1, 1, 1, -1))
    x = torch.nn.functional.pad(x, (0, 0, r, r), mode="reflect")
    x = torch.nn.functional.conv2d(x, g.view(1, 1, -1, 1))
    return x.reshape(n, c, h, w)


def score_values(e, x, y):
    """Per-image score of the model's calibrated kind; y is clipped to [0,1] first, as daed."""
    d = y.clamp(0.0, 1.0) - x
    if e.blur_sigma > 0:
        d = gaussian_blur(d, e.blur_sigma)
    v = (d * d).flatten(1)
    if e.top and e.top < v.shape[1]:
        v = v.topk(e.top, dim=1).values
    return v.mean(1).tolist()


class Entry:
    def __init__(self, path):
        tensors, meta = read_safetensors(path)
        if meta.get("format") != "daed-1" or "config" not in meta:
            raise ValueError(f"{path}: not a daed model file")
        cfg = json.loads(meta["config"])
        self.cfg = cfg
        self.name = cfg.get("name") or os.path.splitext(os.path.basename(path))[0]
        self.tasks = cfg.get("tasks", ["denoise"])
        self.channels = cfg["input"][0]
        self.net = DAE(cfg)
        self.net.load_state_dict(tensors, strict=True)  # same tensors, same names
        self.net.eval()
        cal = cfg.get("calibration") or {}
        try:
            self.score_kind, self.blur_sigma, self.top = parse_score(cal.get("score") or "mse")
            self.score_error = None
        except ValueError as ex:
            self.score_kind, self.score_error = None, str(ex)
        self.threshold = cal.get("threshold")
        q = sorted((float(k[1:]), v) for k, v in (cal.get("quantiles") or {}).items())
        self.quantiles = q
        if self.threshold is None and q:
            self.threshold = dict(cal["quantiles"]).get("p99", q[-1][1])

    def percentile(self, s):
        if not self.quantiles:
            return None
        ps = [p for p, _ in self.quantiles]
        vs = [v for _, v in self.quantiles]
        return float(np.interp(s, vs, ps, left=0.0, right=100.0))


def load_models(folder):
    models = {}
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".safetensors"):
            continue
        try:
            e = Entry(os.path.join(folder, fn))
        except (ValueError, KeyError, RuntimeError) as ex:
            print(f"torch_server: {fn} skipped: {ex}", file=sys.stderr)
            continue
        models[e.name] = e
    return models


# ---------------------------------------------------------------- the app

def build_app(opts):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from PIL import Image

    torch.set_num_threads(opts["threads"])
    models = load_models(opts["models"])
    level = opts["png_level"]
    app = FastAPI()

    def pick(task, name):
        if name:
            e = models.get(name)
            if e is None:
                return None, JSONResponse({"error": {"code": "not_found",
                                                     "message": f"no model named {name}"}}, 404)
        else:
            e = next((m for _, m in sorted(models.items()) if task in m.tasks), None)
            if e is None:
                return None, JSONResponse({"error": {"code": "not_found",
                                                     "message": f"no model for {task}"}}, 404)
        if task not in e.tasks:
            return None, JSONResponse({"error": {"code": "invalid_argument", "message":
                                                 f"model {e.name} does not declare the task {task}"}}, 400)
        return e, None

    def decode(raw, channels):
        im = Image.open(io.BytesIO(raw))
        im = im.convert("L" if channels == 1 else "RGB")
        a = np.asarray(im, dtype=np.float32) / 255.0
        a = a[None] if channels == 1 else a.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(a))

    def encode(t):
        a = (t.clamp(0, 1).mul(255).round().to(torch.uint8)).numpy()
        im = Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=level)
        return buf.getvalue()

    async def inputs(request, e):
        """(batch tensor, is_batch) from an image body or {"images":[{"png":b64}]}."""
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            imgs = json.loads(body)["images"]
            xs = [decode(base64.b64decode(i["png"]), e.channels) for i in imgs]
            return torch.stack(xs), True
        return decode(body, e.channels)[None], False

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/v1/denoise")
    async def denoise(request: Request, model: str = ""):
        e, err = pick("denoise", model)
        if err:
            return err
        try:
            x, batch = await inputs(request, e)
        except (ValueError, KeyError, OSError) as ex:
            return JSONResponse({"error": {"code": "malformed", "message": str(ex)}}, 400)
        with torch.inference_mode():
            y = e.net(x)
        if not batch:
            return Response(encode(y[0]), media_type="image/png")
        out = [{"width": t.shape[2], "height": t.shape[1], "channels": t.shape[0],
                "png": base64.b64encode(encode(t)).decode()} for t in y]
        return {"model": e.name, "images": out}

    @app.post("/v1/score")
    async def score(request: Request, model: str = ""):
        e, err = pick("score", model)
        if err:
            return err
        try:
            x, batch = await inputs(request, e)
        except (ValueError, KeyError, OSError) as ex:
            return JSONResponse({"error": {"code": "malformed", "message": str(ex)}}, 400)
        if e.score_error:
            return JSONResponse({"error": {"code": "unsupported", "message": e.score_error}}, 422)
        with torch.inference_mode():
            y = e.net(x)
        mse = score_values(e, x, y)
        res = [{"score": s, "score_kind": e.score_kind, "threshold": e.threshold,
                "is_anomaly": None if e.threshold is None else s > e.threshold,
                "percentile": e.percentile(s)} for s in mse]
        if batch:
            return {"model": e.name, "results": res}
        return dict(model=e.name, **res[0])

    return app


def serve(opts, host, port, workers):
    """uvicorn on our own listening socket, `workers` forked processes sharing it.

    Not uvicorn's --workers: its shared socket is made without proto=IPPROTO_TCP, so asyncio
    does not set TCP_NODELAY on the accepted connections, and the answer's second write
    waits for the client's delayed ACK (measured: 44 ms per request at any load)."""
    import signal
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)

    def run():
        cfg = uvicorn.Config(build_app(opts), log_level="warning", access_log=False)
        uvicorn.Server(cfg).run(sockets=[sock])

    if workers == 1:
        run()
        return
    kids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            run()
            os._exit(0)
        kids.append(pid)

    def stop(sig, frame):
        for k in kids:
            try:
                os.kill(k, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for k in kids:
        while True:
            try:
                os.waitpid(k, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--png-level", type=int, default=1)
    a = ap.parse_args()
    threads = a.threads or 1
    opts = {"models": os.path.abspath(a.models), "threads": threads, "png_level": a.png_level}
    print(f"torch_server: {a.workers} worker process(es), {threads} torch thread(s) each, "
          f"torch {torch.__version__}", file=sys.stderr)
    serve(opts, a.host, a.port, a.workers)


if __name__ == "__main__":
    main()
