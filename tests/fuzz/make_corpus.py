"""make_corpus.py — write the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Small valid inputs of every kind each parser accepts, plus near-valid ones (one field, byte
or length wrong) so the fuzzer starts next to every error path. Deterministic: rerunning it
rewrites the same bytes. Run from the repository root:
    /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import base64
import gzip
import io
import json
import os
import random
import shutil
import struct
import zlib

import numpy as np
from PIL import Image

ROOT = "tests/fuzz/corpus"
rng = random.Random(20240521)


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- PNG, written by hand so
# every colour type, bit depth, filter, interlacing and ancillary chunk can be produced.

def chunk(kind, body):
    c = kind + body
    return struct.pack(">I", len(body)) + c + struct.pack(">I", zlib.crc32(c) & 0xffffffff)


CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filter_rows(rows, bpp, ftype):
    """Filter each row with ftype (0-4) or, for ftype None, cycle through all five."""
    out, prev = bytearray(), bytes(len(rows[0])) if rows else b""
    for y, row in enumerate(rows):
        f = (y % 5) if ftype is None else ftype
        line = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][f]
            line.append((x - pred) & 0xff)
        out += bytes([f]) + line
        prev = row
    return bytes(out)


def make_png(w, h, ctype, depth, interlace=0, ftype=None, extra=(), samples=None, plte=None,
             level=9):
    nch = CHANNELS[ctype]
    maxv = (1 << depth) - 1
    if samples is None:  # a smooth pattern plus noise: all filters have work to do
        samples = [[[((x * 7 + y * 13 + ch * 50) + rng.randrange(4)) % (maxv + 1)
                     for ch in range(nch)] for x in range(w)] for y in range(h)]
    bpp = max(1, nch * depth // 8)

    def rows_of(xs, ys):
        return [pack_row([s for x in xs for s in samples[y][x]], depth) for y in ys]

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            xs, ys = list(range(x0, w, dx)), list(range(y0, h, dy))
            if xs and ys:
                raw += filter_rows(rows_of(xs, ys), bpp, ftype)
    else:
        raw = filter_rows(rows_of(range(w), range(h)), bpp, ftype)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for kind, body in extra:  # ancillary chunks before PLTE, tRNS after it
        if kind != b"tRNS":
            out += chunk(kind, body)
    if ctype == 3:
        pal = plte or bytes(rng.randrange(256) for _ in range(3 * (maxv + 1)))
        out += chunk(b"PLTE", pal)
    for kind, body in extra:
        if kind == b"tRNS":
            out += chunk(kind, body)
    z = zlib.compress(raw, level)
    out += chunk(b"IDAT", z[: len(z) // 2]) + chunk(b"IDAT", z[len(z) // 2:])
    return out + chunk(b"IEND", b"")


def pngs():
    """(name, bytes) for every PNG kind, then near-valid variants."""
    out = []
    for depth in (1, 2, 4, 8, 16):
        out.append((f"gray{depth}.png", make_png(28, 28, 0, depth)))
    for depth in (1, 2, 4, 8):
        out.append((f"palette{depth}.png", make_png(13, 9, 3, depth)))
    out.append(("palette8_trns.png",
                make_png(16, 16, 3, 8, extra=[(b"tRNS", bytes(range(0, 256, 4)))])))
    for depth in (8, 16):
        out.append((f"rgb{depth}.png", make_png(20, 12, 2, depth)))
        out.append((f"gray_alpha{depth}.png", make_png(9, 17, 4, depth)))
        out.append((f"rgba{depth}.png", make_png(15, 10, 6, depth)))
    out.append(("gray8_trns.png", make_png(8, 8, 0, 8, extra=[(b"tRNS", b"\x00\x07")])))
    out.append(("rgb8_trns.png", make_png(8, 8, 2, 8, extra=[(b"tRNS", b"\x00\x07" * 3)])))
    out.append(("gray16_trns.png", make_png(8, 8, 0, 16, extra=[(b"tRNS", b"\x12\x34")])))
    for ctype, depth in ((0, 1), (0, 8), (3, 4), (2, 8), (6, 16), (4, 8)):
        out.append((f"interlaced_c{ctype}_d{depth}.png",
                    make_png(11, 13, ctype, depth, interlace=1)))
    out.append(("interlaced_1x1.png", make_png(1, 1, 2, 8, interlace=1)))
    out.append(("interlaced_3x2.png", make_png(3, 2, 0, 8, interlace=1)))
    out.append(("gama.png", make_png(10, 10, 2, 8, extra=[(b"gAMA", struct.pack(">I", 100000))])))
    out.append(("gama16.png", make_png(6, 6, 0, 16, extra=[(b"gAMA", struct.pack(">I", 45455))])))
    out.append(("srgb.png", make_png(10, 10, 2, 8, extra=[(b"sRGB", b"\x00")])))
    out.append(("chrm_text.png", make_png(6, 6, 6, 8, extra=[
        (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)),
        (b"tEXt", b"Comment\x00fuzz seed"),
        (b"pHYs", struct.pack(">IIB", 2835, 2835, 1))])))
    out.append(("iccp.png", make_png(4, 4, 2, 8, extra=[
        (b"iCCP", b"fake\x00\x00" + zlib.compress(b"\x00" * 128))])))
    out.append(("1x1.png", make_png(1, 1, 0, 8)))
    out.append(("wide.png", make_png(300, 1, 0, 8, ftype=1)))
    out.append(("tall.png", make_png(1, 300, 2, 8, ftype=2)))
    for f in range(5):
        out.append((f"filter{f}.png", make_png(12, 12, 2, 8, ftype=f)))
    # A legal image much larger than its bytes (all zero: compresses ~1000:1).
    big = make_png(2048, 2048, 0, 8, ftype=0, samples=[[[0]] * 2048] * 2048)
    out.append(("zeros_2048.png", big))

    # Near-valid: each breaks one thing.
    g = make_png(28, 28, 0, 8)
    out.append(("bad_crc.png", g[:30] + bytes([g[30] ^ 1]) + g[31:]))
    out.append(("truncated.png", g[: len(g) * 2 // 3]))
    out.append(("no_iend.png", g[:-12]))
    ihdr_bad = bytearray(g)
    ihdr_bad[24] = 3  # bit depth 3
    crc = zlib.crc32(bytes(ihdr_bad[12:29])) & 0xffffffff
    ihdr_bad[29:33] = struct.pack(">I", crc)
    out.append(("bad_depth.png", bytes(ihdr_bad)))
    huge = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0,
                                                                 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    out.append(("huge_dims.png", huge))
    short = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(b"\x00" * 20)) + chunk(b"IEND", b""))
    out.append(("short_idat.png", short))
    long_ = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(b"\x00" * 200)) + chunk(b"IEND", b""))
    out.append(("long_idat.png", long_))
    out.append(("no_plte.png", make_png(4, 4, 3, 8).replace(b"PLTE", b"pLTE")))
    out.append(("sig_only.png", b"\x89PNG\r\n\x1a\n"))
    return out


# ---------------------------------------------------------------- JPEG (PIL / libjpeg)

def jpegs():
    out = []
    yy, xx = np.mgrid[0:28, 0:28]
    gray = Image.fromarray(((xx * 9 + yy * 5) % 256).astype(np.uint8), "L")
    rgb = Image.fromarray(np.stack([(xx * 9) % 256, (yy * 9) % 256, (xx + yy) * 4 % 256],
                                   -1).astype(np.uint8), "RGB")

    def save(im, **kw):
        b = io.BytesIO()
        im.save(b, "JPEG", **kw)
        return b.getvalue()

    out.append(("gray.jpg", save(gray, quality=75)))
    out.append(("rgb420.jpg", save(rgb, quality=75, subsampling=2)))
    out.append(("rgb422.jpg", save(rgb, quality=60, subsampling=1)))
    out.append(("rgb444.jpg", save(rgb, quality=90, subsampling=0)))
    out.append(("progressive.jpg", save(rgb, quality=70, progressive=True)))
    out.append(("progressive_gray.jpg", save(gray, quality=70, progressive=True)))
    out.append(("optimized.jpg", save(rgb.resize((17, 9)), quality=50, optimize=True)))
    out.append(("tiny.jpg", save(rgb.resize((1, 1)), quality=95)))
    out.append(("odd.jpg", save(rgb.resize((33, 7)), quality=80)))
    out.append(("cmyk.jpg", save(rgb.convert("CMYK"), quality=75)))
    g = save(gray, quality=75)
    out.append(("truncated.jpg", g[: len(g) // 2]))
    out.append(("no_eoi.jpg", g[:-2]))
    out.append(("soi_only.jpg", b"\xff\xd8\xff"))
    # A DQT-only stream (tables, no frame).
    out.append(("tables_only.jpg", b"\xff\xd8\xff\xdb\x00\x43\x00" + bytes(range(1, 65)) +
                b"\xff\xd9"))
    return out


# ---------------------------------------------------------------- safetensors

def st_bytes(tensors, meta=None, pad=True, order=None):
    """tensors: list of (name, dtype, shape, raw bytes); offsets assigned in list order."""
    header, blobs, off = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def f32(*shape, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal(int(np.prod(shape)) if shape else 1).astype("<f4").tobytes()


def safetensors_seeds():
    out = [("empty.safetensors", st_bytes([])),
           ("empty_meta.safetensors", st_bytes([], meta={})),
           ("one.safetensors", st_bytes([("w", "F32", [2, 3], f32(2, 3))])),
           ("scalar.safetensors", st_bytes([("s", "F32", [], f32())])),
           ("zero_dim.safetensors", st_bytes([("z", "F32", [0, 3], b""),
                                              ("a", "F32", [1], f32(1))])),
           ("meta.safetensors", st_bytes([("a", "F32", [4], f32(4))],
                                         meta={"format": "pt", "k": "v"})),
           ("unpadded.safetensors", st_bytes([("a", "F32", [2], f32(2))], pad=False))]
    dtypes = [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4),
              ("I16", 2), ("I8", 1), ("U8", 1), ("U16", 2), ("U32", 4), ("U64", 8),
              ("BOOL", 1), ("F8_E4M3", 1), ("F8_E5M2", 1)]
    out.append(("dtypes.safetensors",
                st_bytes([(f"t_{d}", d, [3], bytes(range(3 * s))) for d, s in dtypes])))
    out.append(("dims8.safetensors", st_bytes([("d", "U8", [1, 2, 1, 2, 1, 1, 2, 1], bytes(8))])))
    out.append(("unicode.safetensors", st_bytes([("na\u00efve.\u2603", "U8", [1], b"\x01")],
                                                meta={"\u00e9": "\u2603"})))
    # Near-valid.
    good = st_bytes([("a", "F32", [2], f32(2)), ("b", "F32", [1], f32(1))])
    out.append(("trailing.safetensors", good + b"\x00"))
    out.append(("short_data.safetensors", good[:-1]))
    h = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()
    out.append(("overlap.safetensors", struct.pack("<Q", len(h)) + h + bytes(8)))
    h = json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()
    out.append(("hole.safetensors", struct.pack("<Q", len(h)) + h + bytes(8)))
    h = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' \
        b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    out.append(("duplicate.safetensors", struct.pack("<Q", len(h)) + h + bytes(8)))
    h = b'{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}'
    out.append(("bad_dtype.safetensors", struct.pack("<Q", len(h)) + h + bytes(4)))
    h = b'{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}'
    out.append(("negative_dim.safetensors", struct.pack("<Q", len(h)) + h + bytes(4)))
    h = b'{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'
    out.append(("overflow.safetensors", struct.pack("<Q", len(h)) + h))
    h = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}'
    out.append(("unknown_field.safetensors", struct.pack("<Q", len(h)) + h + bytes(4)))
    h = b'{"__metadata__":{"k":1}}'
    out.append(("meta_number.safetensors", struct.pack("<Q", len(h)) + h))
    out.append(("header_too_long.safetensors", struct.pack("<Q", 1 << 40) + b"{}"))
    out.append(("not_json.safetensors", struct.pack("<Q", 6) + b"{\"a\":["))
    out.append(("len_only.safetensors", struct.pack("<Q", 0)))
    return out


# ---------------------------------------------------------------- daed model files

def model_file(config, params, meta_extra=None):
    """params: list of (name, shape); values are small and finite."""
    tensors = [(n, "F32", list(s), (f32(*s, seed=i) if s else f32())) for i, (n, s)
               in enumerate(params)]
    meta = {"format": "daed-1", "config": json.dumps(config)}
    meta.update(meta_extra or {})
    return st_bytes(tensors, meta=meta)


def conv(i, o, k=3, s=1, p=1):
    return {"type": "conv2d", "in_channels": i, "out_channels": o, "kernel_size": k,
            "stride": s, "padding": p}


def convt(i, o, k=3, s=2, p=1, op=1):
    return {"type": "conv_transpose2d", "in_channels": i, "out_channels": o, "kernel_size": k,
            "stride": s, "padding": p, "output_padding": op}


def params_of(config):
    out = []
    for part in ("encoder", "decoder"):
        for i, l in enumerate(config[part]):
            t = l["type"]
            if t == "linear":
                out += [(f"{part}.{i}.weight", (l["out_features"], l["in_features"])),
                        (f"{part}.{i}.bias", (l["out_features"],))]
            elif t in ("conv2d", "conv_transpose2d"):
                k = l["kernel_size"] if isinstance(l["kernel_size"], int) else l["kernel_size"][0]
                i_, o_ = l["in_channels"], l["out_channels"]
                w = (o_, i_, k, k) if t == "conv2d" else (i_, o_, k, k)
                out += [(f"{part}.{i}.weight", w), (f"{part}.{i}.bias", (o_,))]
    return out


def modelfile_seeds():
    cfgs = {
        "linear": {"name": "lin", "input": [1, 4, 4], "output": [1, 4, 4],
                   "tasks": ["denoise", "encode", "score"],
                   "encoder": [{"type": "flatten"},
                               {"type": "linear", "in_features": 16, "out_features": 3},
                               {"type": "relu"}],
                   "decoder": [{"type": "linear", "in_features": 3, "out_features": 16},
                               {"type": "sigmoid"},
                               {"type": "unflatten", "unflattened_size": [1, 4, 4]}],
                   "calibration": {"score": "mse", "quantiles": {"p50": 0.01, "p90": 0.02,
                                                                 "p99": 0.05},
                                   "threshold": 0.04}},
        "conv": {"input": [1, 8, 8], "tasks": ["denoise", "inpaint"],
                 "encoder": [conv(1, 2, 3, 2, 1), {"type": "leaky_relu", "negative_slope": 0.2},
                             conv(2, 3, 3, 2, 1), {"type": "relu"}],
                 "decoder": [convt(3, 2), {"type": "tanh"},
                             {"type": "upsample", "scale_factor": 2, "mode": "bilinear"},
                             conv(2, 1), {"type": "sigmoid"}]},
        "nearest": {"input": [3, 4, 4], "name": "rgb",
                    "encoder": [conv(3, 2, 2, 2, 0), {"type": "identity"}],
                    "decoder": [{"type": "upsample", "scale_factor": 2, "mode": "nearest"},
                                conv(2, 3, [3, 3], 1, 1)]},
        "residual": {"input": [1, 6, 6], "residual": True, "tasks": ["denoise"],
                     "encoder": [conv(1, 2)], "decoder": [{"type": "relu"}, conv(2, 1)]},
        "superres": {"input": [1, 4, 4], "output": [1, 8, 8], "tasks": ["superres"],
                     "encoder": [conv(1, 2, 1, 1, 0)],
                     "decoder": [convt(2, 1, 4, 2, 1, 0)],
                     "training": {"epochs": 1, "lr": 0.001}, "quality": {"psnr": 20.5}},
        # FFDNet-style: image + noise-level map, half resolution in between
        "ffd": {"input": [2, 4, 6], "residual": True, "noise_map": True,
                "encoder": [{"type": "pixel_unshuffle", "downscale_factor": 2},
                            conv(8, 4, 3, 1, 1), {"type": "relu"}],
                "decoder": [conv(4, 4, 3, 1, 1), {"type": "pixel_shuffle", "upscale_factor": 2}]},
        # additive skips: inside the encoder, and from the encoder into the decoder
        "skip": {"input": [1, 4, 4],
                 "encoder": [conv(1, 2, 3, 1, 1), {"type": "relu"}, {"type": "add", "from": 0}],
                 "decoder": [conv(2, 2, 3, 1, 1), {"type": "add", "from": 2},
                             conv(2, 1, 3, 1, 1)]},
    }
    out = []
    for name, cfg in cfgs.items():
        out.append((f"{name}.safetensors", model_file(cfg, params_of(cfg))))
    cfg = cfgs["linear"]
    p = params_of(cfg)
    # Near-valid: each breaks one rule of modelfile.h.
    out.append(("missing_tensor.safetensors", model_file(cfg, p[:-1])))
    out.append(("extra_tensor.safetensors", model_file(cfg, p + [("encoder.9.weight", (1,))])))
    out.append(("wrong_shape.safetensors",
                model_file(cfg, [(p[0][0], (3, 15))] + p[1:])))
    out.append(("wrong_format.safetensors", model_file(cfg, p, {"format": "daed-2"})))
    bad = dict(cfg, encoder=[{"type": "flatten"}, {"type": "linear", "in_features": 15,
                                                   "out_features": 3}, {"type": "relu"}])
    out.append(("bad_in_features.safetensors", model_file(bad, params_of(bad))))
    bad = dict(cfg, encoder=cfg["encoder"] + [{"type": "swish"}])
    out.append(("unknown_layer.safetensors", model_file(bad, params_of(bad))))
    bad = dict(cfg, output=[1, 5, 5])
    out.append(("bad_output.safetensors", model_file(bad, params_of(bad))))
    bad = dict(cfg, tasks=["denoise", "paint"])
    out.append(("bad_task.safetensors", model_file(bad, params_of(bad))))
    nan = st_bytes([(n, "F32", list(s), np.full(int(np.prod(s)), np.nan, "<f4").tobytes())
                    for n, s in p], meta={"format": "daed-1", "config": json.dumps(cfg)})
    out.append(("nan.safetensors", nan))
    f16 = st_bytes([(n, "F16", list(s), bytes(2 * int(np.prod(s)))) for n, s in p],
                   meta={"format": "daed-1", "config": json.dumps(cfg)})
    out.append(("f16.safetensors", f16))
    out.append(("config_not_json.safetensors",
                st_bytes([], meta={"format": "daed-1", "config": "{\"input\": [1,"})))
    return out


# ---------------------------------------------------------------- IDX

def idx_images(n, h, w, seed=0):
    r = np.random.default_rng(seed)
    return struct.pack(">IIII", 0x803, n, h, w) + r.integers(0, 256, n * h * w, np.uint8).tobytes()


def idx_labels(n, seed=0):
    r = np.random.default_rng(seed)
    return struct.pack(">II", 0x801, n) + r.integers(0, 10, n, np.uint8).tobytes()


def gz(b):
    return gzip.compress(b, mtime=0)


def idx_input(images, labels=None):
    """The fuzz_idx.c layout: flags, [labels length, labels], images."""
    if labels is None:
        return b"\x00" + images
    return b"\x01" + struct.pack(">H", len(labels)) + labels + images


def idx_seeds():
    im, lb = idx_images(3, 28, 28), idx_labels(3)
    return [("images.idx", idx_input(im)),
            ("images_labels.idx", idx_input(im, lb)),
            ("gzip.idx", idx_input(gz(im), gz(lb))),
            ("gzip_images_only.idx", idx_input(gz(idx_images(2, 5, 7, 1)))),
            ("empty_set.idx", idx_input(idx_images(0, 28, 28), idx_labels(0))),
            ("one_pixel.idx", idx_input(idx_images(1, 1, 1))),
            ("truncated.idx", idx_input(im[:-10], lb)),
            ("trailing.idx", idx_input(im + b"\x00", lb)),
            ("count_mismatch.idx", idx_input(im, idx_labels(2))),
            ("bad_magic.idx", idx_input(struct.pack(">IIII", 0x802, 1, 2, 2) + bytes(4))),
            ("huge_header.idx", idx_input(struct.pack(">IIII", 0x803, 1000000, 4096, 4096))),
            ("zero_height.idx", idx_input(struct.pack(">IIII", 0x803, 1, 0, 4))),
            ("gzip_truncated.idx", idx_input(gz(im)[:-9]))]


# ---------------------------------------------------------------- PNG folders

def png_dir_seeds():
    sep = b"\n--\n"
    a, b, c = make_png(6, 5, 0, 8), make_png(6, 5, 2, 8), make_png(6, 5, 6, 8)
    return [("flat_gray.bin", b"\x00" + sep.join([a, a, a])),
            ("flat_rgb3.bin", b"\x02" + sep.join([b, c, a])),
            ("classes.bin", b"\x01" + sep.join([a, b, c, a, b])),
            ("classes_rgb.bin", b"\x03" + sep.join([c, c, c, c])),
            ("mixed_sizes.bin", b"\x00" + sep.join([a, make_png(5, 6, 0, 8)])),
            ("one_bad.bin", b"\x00" + sep.join([a, a[:40]])),
            ("one.bin", b"\x00" + make_png(3, 3, 3, 2))]


# ---------------------------------------------------------------- base64

def base64_seeds():
    out = []
    for n in (0, 1, 2, 3, 4, 5, 30):
        out.append((f"len{n}.b64", base64.b64encode(bytes(range(n)))))
    out.append(("png.b64", base64.b64encode(make_png(4, 4, 0, 8))))
    out += [("bad_char.b64", b"QUJD*A=="), ("bad_len.b64", b"QUJDR"),
            ("bad_pad.b64", b"QU=D"), ("noncanonical.b64", b"QUI="[:2] + b"J="[:1] + b"="),
            ("whitespace.b64", b"QUJD\nREVG"), ("urlsafe.b64", b"-_-_"),
            ("pad_only.b64", b"===="), ("three_pad.b64", b"Q===")]
    return out


def main():
    # Regenerate the seeds; keep the regress_* inputs the fuzzers found.
    for d, _, files in os.walk(ROOT):
        for f in files:
            if not f.startswith("regress_"):
                os.remove(os.path.join(d, f))
    for name, data in pngs():
        put("png", name, data)
    for name, data in jpegs():
        put("jpeg", name, data)
    # The dispatching decoder: a few of each kind and something else.
    for name, data in pngs()[:8] + jpegs()[:4]:
        put("image", name, data)
    put("image", "gif.bin", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    for name, data in safetensors_seeds():
        put("safetensors", name, data)
    for name, data in modelfile_seeds():
        put("modelfile", name, data)
        put("safetensors", "model_" + name, data)
    shutil.copy("tests/fixtures/modelfile/pytorch_conv.safetensors",
                os.path.join(ROOT, "modelfile", "pytorch_conv.safetensors"))
    # PngSuite files the simplified libpng API got wrong (16-bit interlaced, gAMA) and a
    # signature damaged by a text-mode transfer (png.c names it).
    for name in ("basi0g16.png", "basi6a16.png", "bgai4a16.png", "g03n2c08.png",
                 "xlfn0g04.png", "xcrn0g04.png"):
        shutil.copy(os.path.join("tests/conformance/pngsuite", name),
                    os.path.join(ROOT, "png", "pngsuite_" + name))
    for name, data in idx_seeds():
        put("idx", name, data)
    for name, data in png_dir_seeds():
        put("png_dir", name, data)
    for name, data in base64_seeds():
        put("base64", name, data)


if __name__ == "__main__":
    main()
