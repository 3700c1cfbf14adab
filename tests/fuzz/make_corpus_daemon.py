"""make_corpus_daemon.py — seed corpora of the daemon fuzz targets (http, json) into
tests/fuzz/corpus/{http,json}/: a valid request of every route and body form, and
near-valid ones next to each error path. Formats: see fuzz_http.c and fuzz_json.c.
Deterministic. Run from the repository root:
    /usr/bin/python3 tests/fuzz/make_corpus_daemon.py
"""
import base64
import json
import os
import shutil
import struct
import zlib

ROOT = "tests/fuzz/corpus"


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def png(w, h, channels=1):
    """An 8-bit grey or RGB PNG with a gradient (libpng reads it; no PIL needed)."""
    ctype = {1: 0, 3: 2}[channels]
    raw = b"".join(b"\0" + bytes(((x + y) * 7 + c * 50) & 255
                                 for x in range(w) for c in range(channels))
                   for y in range(h))

    def chunk(kind, body):
        c = kind + body
        return struct.pack(">I", len(body)) + c + struct.pack(">I", zlib.crc32(c) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


P28 = png(28, 28)
P14 = png(14, 14)
B28 = base64.b64encode(P28).decode()
PIX = [round(((i * 37) % 100) / 100, 2) for i in range(784)]
PIX14 = PIX[:196]


def js(o):
    return json.dumps(o, separators=(",", ":"))


# ---------------------------------------------------------------- json: endpoint byte,
# split byte, body. Endpoint indices as in fuzz_json.c's ENDPOINTS.
E = {"denoise": 0, "denoise_conv": 1, "inpaint_conv": 2, "inpaint_mlp": 3, "sr": 4,
     "sr_resize": 5, "encode_mlp": 6, "encode_conv": 7, "decode_mlp": 8, "decode_conv": 9,
     "interp_mlp": 10, "interp_conv": 11, "score_conv": 12, "score_heat": 13, "score_mlp": 14,
     "v2_mlp": 15, "v2_conv": 16, "v2_sr": 17, "denoise_resize": 18, "reload": 19}


def jput(name, ep, body, split=0):
    put("json", name, bytes([E[ep], split]) + (body if isinstance(body, bytes) else body.encode()))


img_pix = {"width": 28, "height": 28, "channels": 1, "pixels": PIX}
img_png = {"png": B28}
jput("denoise_pixels", "denoise", js(img_pix))
jput("denoise_png", "denoise_conv", js(img_png))
jput("denoise_batch", "denoise", js({"images": [img_png, img_pix]}), 6)
jput("denoise_shape", "denoise", js({"shape": [1, 28, 28], "pixels": PIX}))
jput("denoise_resize", "denoise_resize", js({"png": base64.b64encode(png(20, 9)).decode()}))
jput("denoise_b64_garbage", "denoise", js({"png": B28[:40] + "!!%%" + B28[40:]}))
jput("denoise_chunked", "denoise", js(img_pix), 9)
jput("inpaint_mask", "inpaint_conv", js(dict(img_pix, mask=[1 if i % 3 else 0 for i in range(784)])))
jput("inpaint_png", "inpaint_mlp", js({"image": img_png, "mask": [0.0] * 784}))
jput("sr_pixels", "sr", js({"width": 14, "height": 14, "channels": 1, "pixels": PIX14}))
jput("sr_resize", "sr_resize", js({"png": B28}))
jput("encode_pixels", "encode_mlp", js(img_pix))
jput("encode_batch", "encode_conv", js({"images": [img_png, img_png]}), 3)
jput("decode_latents", "decode_mlp", js({"latents": [[0.1, -0.2, 0.3, 0.4], [0, 0, 0, 0]]}))
jput("decode_codes", "decode_mlp", js({"codes": [[1, 2, 3, 4]]}))
jput("decode_conv", "decode_conv", js({"latent": [0.5] * 196, "shape": [4, 7, 7]}))
jput("interp_two", "interp_mlp", js({"images": [img_pix, img_png], "steps": 4}))
jput("interp_conv", "interp_conv", js({"images": [img_png, img_png]}))
jput("score_conv", "score_conv", js(img_pix))
jput("score_heat", "score_heat", js({"images": [img_png, img_pix]}))
jput("score_mlp", "score_mlp", js(img_png))
v2in = {"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": PIX}
jput("v2_mlp", "v2_mlp", js({"id": "r1", "inputs": [v2in], "outputs": [{"name": "output"}, {"name": "latent"}]}))
jput("v2_flat", "v2_mlp", js({"inputs": [{"name": "input", "shape": [2, 784], "datatype": "FP32", "data": PIX + PIX}]}))
jput("v2_nested", "v2_conv", js({"inputs": [dict(v2in, data=[[PIX[i * 28:(i + 1) * 28] for i in range(28)]])]}))
jput("v2_sr", "v2_sr", js({"inputs": [{"name": "input", "shape": [1, 1, 14, 14], "datatype": "FP32", "data": PIX14}]}))
jput("v2_bad_type", "v2_mlp", js({"inputs": [dict(v2in, datatype="INT8")]}))
jput("v2_bad_shape", "v2_conv", js({"inputs": [dict(v2in, shape=[1, 1, 28, 27])]}))
jput("v2_params", "v2_mlp", js({"id": "x", "parameters": {"a": 1}, "inputs": [v2in], "outputs": [{"name": "latent", "parameters": {}}]}))
jput("deep", "denoise", "[" * 40 + "]" * 40)
jput("wide", "score_conv", "[" + ",".join(["0"] * 5000) + "]")
jput("bad_unicode", "denoise", b'{"png":"\\ud800\xff\xfe"}')
jput("numbers", "denoise", js({"width": 1e308, "height": -0.0, "channels": 1.5, "pixels": [1e-320, -1, 2]}))
jput("reload", "reload", "{}")

# ---------------------------------------------------------------- http: flag byte, then
# "METHOD TARGET\n", headers, empty line, body. Flag bit 0: the key; bits 1-2 framing (0
# Content-Length, 1 chunked, 2 raw + half close, 3 twice on one connection); bits 3-7 split.
KEY, CL, CHUNKED, RAW, TWICE = 1, 0, 2, 4, 6


def hput(name, flags, method, target, headers=(), body=b""):
    head = "%s %s\n" % (method, target) + "".join(h + "\n" for h in headers) + "\n"
    put("http", name, bytes([flags]) + head.encode() + (body if isinstance(body, bytes) else body.encode()))


hput("healthz", 0, "GET", "/healthz")
hput("readyz_head", 0, "HEAD", "/readyz")
hput("v2_live", 0, "GET", "/v2/health/live")
hput("v2_ready", TWICE, "GET", "/v2/health/ready")
hput("metrics", KEY, "GET", "/metrics")
hput("metrics_nokey", 0, "GET", "/metrics")
hput("openapi", KEY, "GET", "/openapi.yaml")
hput("models", KEY | TWICE, "GET", "/v1/models")
hput("model", KEY, "GET", "/v1/models/conv")
hput("model_missing", KEY, "GET", "/v1/models/nope")
hput("v2_server", KEY, "GET", "/v2")
hput("v2_model", KEY, "GET", "/v2/models/mlp")
hput("v2_model_ready", KEY, "GET", "/v2/models/sr/ready")
hput("wrong_key", 0, "GET", "/v1/models", ["Authorization: Bearer fz-key-8c2"])
hput("basic_auth", 0, "GET", "/v2/models/mlp", ["Authorization: Basic Zno6a2V5"])
hput("denoise_png", KEY, "POST", "/v1/denoise", ["Content-Type: image/png"], P28)
hput("denoise_png_split", KEY | (5 << 3), "POST", "/v1/denoise?model=conv&encoding=png", ["Content-Type: image/png"], P28)
hput("denoise_chunked", KEY | CHUNKED | (17 << 3), "POST", "/v1/denoise?model=mlp", ["Accept: application/json"], P28)
hput("denoise_nokey", 0, "POST", "/v1/denoise", ["Content-Type: image/png"], P28)
hput("denoise_json", KEY, "POST", "/v1/denoise", ["Content-Type: application/json", "Accept: application/json"], js(img_pix))
hput("inpaint", KEY, "POST", "/v1/inpaint?model=conv", ["Content-Type: image/png"], P28)
hput("superres", KEY | (3 << 3), "POST", "/v1/superres?model=sr&resize=1", [], P14)
hput("encode", KEY, "POST", "/v1/encode?model=mlp", ["Accept: application/json"], P28)
hput("decode", KEY, "POST", "/v1/decode?model=mlp", ["Content-Type: application/json", "Accept: image/png"], js({"latents": [[1, 2, 3, 4]]}))
hput("interp", KEY, "POST", "/v1/interpolate?model=mlp&steps=3", ["Content-Type: application/json"], js({"images": [img_png, img_png]}))
hput("score", KEY, "POST", "/v1/score?model=conv&heatmap=1&threshold=0.5", [], P28)
hput("score_badq", KEY, "POST", "/v1/score?model=conv&threshold=-1&heatmap=maybe", [], P28)
hput("v2_infer", KEY | CHUNKED, "POST", "/v2/models/mlp/infer", ["Content-Type: application/json"],
     js({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": PIX}]}))
hput("reload", KEY, "POST", "/v1/admin/reload")
hput("method_405", KEY, "DELETE", "/v1/denoise")
hput("v2_405", 0, "PUT", "/v2/models/mlp/infer")
hput("patch", KEY, "PATCH", "/healthz")
hput("not_found", KEY, "GET", "/v3/nothing?x=1")
hput("long_param", KEY, "GET", "/v1/models/" + "m" * 300)
hput("query_junk", KEY, "POST", "/v1/denoise?model=&resize=2&steps=99999999999&encoding=gif", [], P28)
hput("pct_path", KEY, "GET", "/v1/models/%63onv%00")
hput("accept_q0", KEY, "POST", "/v1/denoise", ["Accept: image/png;q=0, application/json;q=0.5"], P28)
hput("expect", KEY, "POST", "/v1/denoise", ["X-Note: 1", "Content-Type: image/png"], P28[:50])
put("http", "raw_cl_mismatch", bytes([RAW]) + b"POST /v1/denoise HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer fz-key-8c1\r\nContent-Length: 9999\r\n\r\n" + P28)
put("http", "raw_cl_huge", bytes([RAW]) + b"POST /v1/denoise HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\nxx")
put("http", "raw_cl_neg", bytes([RAW]) + b"POST /v1/score HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n")
put("http", "raw_two_cl", bytes([RAW]) + b"POST /v1/encode HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
put("http", "raw_bad_chunk", bytes([RAW | (9 << 3)]) + b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
put("http", "raw_http10", bytes([RAW]) + b"GET /healthz HTTP/1.0\r\n\r\n")
put("http", "raw_pipelined", bytes([RAW]) + b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /readyz HTTP/1.1\r\nHost: a\r\n\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
put("http", "raw_cut_body", bytes([RAW]) + b"POST /v1/denoise HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer fz-key-8c1\r\nContent-Length: 800\r\n\r\n" + P28[:100])
put("http", "raw_garbage", bytes([RAW]) + b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
put("http", "raw_expect", bytes([RAW]) + b"POST /v1/denoise HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer fz-key-8c1\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(P28) + P28)
# framing and hygiene (reqcheck.c): smuggling, unknown transfer coding, no Host, %00
put("http", "raw_cl_and_te", bytes([RAW]) + b"POST /v1/denoise HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer fz-key-8c1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n")
put("http", "raw_te_gzip", bytes([RAW]) + b"POST /v1/denoise HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
put("http", "raw_no_host", bytes([RAW]) + b"GET /v1/models HTTP/1.1\r\nAuthorization: Bearer fz-key-8c1\r\n\r\n")
put("http", "raw_nul_query", bytes([RAW]) + b"POST /v1/denoise?model=conv%00x&resize=%01 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer fz-key-8c1\r\nContent-Length: 0\r\n\r\n")
# strict JSON (json.c): what cJSON alone accepted, and repeated keys
jput("strict_leading_zero", "denoise_conv", '{"width": 028, "height": 28, "channels": 1, "pixels": []}')
jput("strict_raw_tab", "denoise_conv", '{"png": "iVBO\tRw0"}')
jput("strict_bad_escape", "denoise_conv", '{"png": "\\uqqqq"}')
jput("strict_surrogates", "v2_mlp", '{"id": "\\ud834\\udd1e\\ud800", "inputs": []}')
jput("strict_formfeed", "denoise_conv", b'{"png": "x"}\x0c')
jput("strict_utf8", "denoise_conv", b'{"png": "\xed\xa0\x80\xc0\xaf"}')
jput("dup_key", "denoise_conv", js({"png": B28})[:-1] + ', "png": "' + B28 + '"}')
