"""common.py — what the evaluation programs of eval/ share: the test material of ../shared,
the noise and PSNR of the published tables (../shared/TABLES.md), and a daed to talk to
over HTTP (started here on a loopback port, or one already running at --url).

Evaluation programs only: nothing in `make test` imports this. Needs Debian's
/usr/bin/python3 with python3-numpy and python3-opencv (check_python says what is missing).
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXIT_MISSING = 2  # ../shared, a Python package or a program is missing


def die_missing(msg):
    """Stop with exit status 2: something the evaluation needs is not on this machine."""
    print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr)
    sys.exit(EXIT_MISSING)


def check_python(*modules):
    """Import the given modules (e.g. "numpy", "cv2", "torch") or exit 2 naming the
    Debian packages to install."""
    pkg = {"numpy": "python3-numpy", "cv2": "python3-opencv", "torch": "python3-torch",
           "skimage": "python3-skimage"}
    missing = []
    for m in modules:
        try:
            __import__(m)
        except ImportError:
            missing.append(pkg.get(m, m))
    if missing:
        die_missing(f"missing Python packages: {' '.join(missing)} (apt-get install "
                    f"{' '.join(missing)}; run with /usr/bin/python3, the Debian one)")


def shared_dir(path=None):
    """The shared test material (default ../shared next to the checkout, or $DAED_SHARED),
    or exit 2 saying it is missing."""
    path = path or os.environ.get("DAED_SHARED") or os.path.join(ROOT, "..", "shared")
    path = os.path.abspath(path)
    if not os.path.isdir(os.path.join(path, "testsets")):
        die_missing(f"{path}/testsets not found: the evaluation needs the shared test "
                    f"material (Set12, Kodak24, CC15; TABLES.md); give its folder with "
                    f"--shared DIR or DAED_SHARED")
    return path


# ---- images, noise, PSNR (TABLES.md) ----

def read_image(path):
    """8-bit image as uint8 HxW (gray) or HxWx3 (RGB order)."""
    import cv2
    im = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if im is None:
        raise RuntimeError(f"{path}: cannot read the image")
    if im.ndim == 3:
        if im.shape[2] == 4:
            im = im[..., :3]
        im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
    return im


def decode_image(data):
    """PNG/JPEG bytes -> uint8 HxW or HxWx3 (RGB)."""
    import cv2
    import numpy as np
    im = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if im is None:
        raise RuntimeError(f"answer is not a PNG or JPEG ({data[:40]!r})")
    if im.ndim == 3:
        im = cv2.cvtColor(im[..., :3], cv2.COLOR_BGR2RGB)
    return im


def encode_image(im, ext=".png", params=()):
    """uint8 HxW or HxWx3 (RGB) -> PNG/JPEG bytes (OpenCV defaults: JPEG 4:2:0)."""
    import cv2
    if im.ndim == 3:
        im = cv2.cvtColor(im, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, im, list(params))
    if not ok:
        raise RuntimeError(f"cv2.imencode({ext}) failed")
    return buf.tobytes()


def gaussian_noisy(clean_u8, sigma):
    """The tables' noisy input: x = img/255 (float64), np.random.seed(0),
    y = x + N(0, sigma/255) with the image's shape; not clipped, not rounded."""
    import numpy as np
    x = clean_u8.astype(np.float64) / 255.0
    np.random.seed(0)
    return x + np.random.normal(0, sigma / 255.0, x.shape)


def to_u8(z):
    """Clip to [0,1], uint8(round(255 z)) (KAIR's single2uint)."""
    import numpy as np
    return np.uint8((np.clip(z, 0, 1) * 255.0).round())


def psnr(a_u8, b_u8):
    """PSNR (peak 255, all channels) of two uint8 images of the same shape."""
    import numpy as np
    if a_u8.shape != b_u8.shape:
        raise RuntimeError(f"answer shape {a_u8.shape} differs from the original's {b_u8.shape}")
    mse = np.mean((a_u8.astype(np.float64) - b_u8.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 20 * np.log10(255.0 / np.sqrt(mse))


def pixels_json(y):
    """Float image HxW or HxWx3 -> daed's JSON image body (channel-major pixels, %.9g: the
    float32 value exactly; values outside [0,1] are sent as they are)."""
    import numpy as np
    c = 1 if y.ndim == 2 else y.shape[2]
    planar = y[None] if y.ndim == 2 else np.transpose(y, (2, 0, 1))
    flat = np.ascontiguousarray(planar, dtype=np.float32).ravel()
    px = ",".join(map("{:.9g}".format, flat.tolist()))
    return (f'{{"width":{y.shape[1]},"height":{y.shape[0]},"channels":{c},'
            f'"pixels":[{px}]}}').encode()


def pixels_from_json(img):
    """daed's JSON image ({"width","height","channels","pixels"}) -> float64 HxW or HxWx3."""
    import numpy as np
    w, h, c = img["width"], img["height"], img["channels"]
    a = np.asarray(img["pixels"], np.float64)
    if a.size != w * h * c:
        raise RuntimeError(f"answer has {a.size} pixels for {w}x{h}x{c}")
    a = a.reshape(c, h, w)
    return a[0] if c == 1 else np.transpose(a, (1, 2, 0))


# ---- daed over HTTP ----

class DaedError(RuntimeError):
    """A non-2xx answer: status and daed's error message."""


class Daed:
    """A daed to send requests to: start() runs build/daed on 127.0.0.1 (port 0 = a free one,
    read back from --port-file) with a models folder; attach() uses one already running."""

    def __init__(self):
        self.proc = None
        self.tmp = None
        self.url = None
        self.log = None
        self.conn = None

    def attach(self, url):
        self.url = url.rstrip("/")
        self.wait_ready(10)
        return self

    def start(self, daed, models, port=0, extra=()):
        if not os.access(daed, os.X_OK):
            die_missing(f"{daed} not found or not executable (make all)")
        if not os.path.isdir(models):
            die_missing(f"models folder {models} not found")
        # SIGTERM (kill, make interrupted) ends the program through its finally: daed stops too
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        self.tmp = tempfile.mkdtemp(prefix="daed-eval-")
        port_file = os.path.join(self.tmp, "port")
        self.log = os.path.join(self.tmp, "daed.log")
        cmd = [daed, "--bind", "127.0.0.1", "--port", str(port), "--port-file", port_file,
               "--models", models, "--max-body", "256M", "--access-log", "0",
               "--request-timeout", "600", *extra]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daed exited with status {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("daed did not write its port within 60 s")
        self.url = f"http://127.0.0.1:{open(port_file).read().strip()}"
        self.wait_ready(60)
        return self

    def log_tail(self, n=20):
        try:
            return "".join(open(self.log).readlines()[-n:])
        except OSError:
            return ""

    def wait_ready(self, seconds):
        deadline = time.time() + seconds
        last = None
        while time.time() < deadline:
            try:
                status, _, _ = self.request("GET", "/readyz")
                if status == 200:
                    return
                last = f"/readyz answered {status}"
            except (OSError, http.client.HTTPException) as e:
                last = str(e)
                self.conn = None
            time.sleep(0.1)
        raise RuntimeError(f"daed at {self.url} not ready after {seconds} s: {last}")

    def request(self, method, path, body=None, headers=None):
        """One request on a kept-alive connection: (status, headers dict, body bytes)."""
        u = urllib.parse.urlsplit(self.url)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=900)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def denoise(self, body, content_type, query=None, accept=None):
        """POST /v1/denoise: (answer bytes, model name, wall seconds); DaedError on non-2xx."""
        path = "/v1/denoise" + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        t = time.perf_counter()
        status, hdr, data = self.request("POST", path, body, headers)
        dt = time.perf_counter() - t
        if status // 100 != 2:
            try:
                msg = json.loads(data)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                msg = data[:200].decode("latin-1")
            raise DaedError(f"HTTP {status}: {msg}")
        return data, hdr.get("x-model", "?"), dt

    def models(self):
        status, _, data = self.request("GET", "/v1/models")
        return json.loads(data) if status == 200 else {}

    def stop(self):
        if self.conn:
            self.conn.close()
            self.conn = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
