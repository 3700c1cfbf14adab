#!/bin/sh
# rewrite-includes.sh — issue 21: the public headers by layer (include/daed/{core,io,train,
# serve}/), the daemon's internals next to their sources (src/serve/), names that match
# their sources. Moves the files (git mv) and rewrites every #include and every path in the
# docs that names them.
#
# Idempotent: run it again after merging a branch that still uses the old paths (it moves
# only what is still at its old place and rewrites only old-style includes). Run from
# anywhere inside the clone; needs git and python3. Prints what it changed.
#
#   sh scripts/rewrite-includes.sh          # moves + includes + doc paths
set -eu
cd "$(dirname "$0")/.."

python3 - <<'PY'
import os, re, subprocess

# old header name -> new place. "include/daed/<layer>/<name>.h" is public, included as
# "daed/<layer>/<name>.h"; "src/serve/<name>.h" is private to the daemon, included as
# "<name>.h" from src/serve/ and by relative path ("../src/serve/<name>.h") from tests/bench.
HEADERS = {
    # core: numbers, the model, the error vocabulary
    "blas": "include/daed/core/blas.h",
    "error": "include/daed/core/error.h",
    "layers": "include/daed/core/layers.h",
    "model": "include/daed/core/model.h",
    "rng": "include/daed/core/rng.h",
    "score": "include/daed/core/score.h",
    "tile": "include/daed/core/tile.h",
    # io: bytes <-> things
    "dataset": "include/daed/io/dataset.h",
    "image": "include/daed/io/image.h",
    "json": "include/daed/io/json.h",
    "model_edit": "include/daed/io/model_edit.h",
    "modelfile": "include/daed/io/modelfile.h",
    "photo": "include/daed/io/photo.h",
    "pixels_json": "include/daed/io/pixels_json.h",
    "safetensors": "include/daed/io/safetensors.h",
    "weights_image": "include/daed/io/weights_image.h",
    # train: learning
    "corrupt": "include/daed/train/corrupt.h",
    "loss": "include/daed/train/loss.h",
    "metrics": "include/daed/train/quality.h",      # src/train/metrics.c -> quality.c
    "optim": "include/daed/train/optim.h",
    "photonoise": "include/daed/train/photonoise.h",
    "recipe": "include/daed/train/recipe.h",
    "scorefit": "include/daed/train/scorefit.h",
    "train": "include/daed/train/trainer.h",         # the trainer of src/train/trainer.c
    # serve: the daemon's public face (its main: src/tools/daed.c) ...
    "serve": "include/daed/serve/serve.h",
    "serve_config": "include/daed/serve/serve_config.h",
    # ... and its internals, next to their sources
    "http": "src/serve/http.h",
    "prom": "src/serve/prom.h",
    "registry": "src/serve/registry.h",
    "web": "src/serve/web.h",
    "workpool": "src/serve/workpool.h",
}
# Other files renamed with their header (old -> new), and the words renamed inside the
# tree (file names in comments, header guards, the unit-test suite of the renamed module).
FILES = {
    "src/train/metrics.c": "src/train/quality.c",
    "tests/check_metrics.c": "tests/check_quality.c",
}
WORDS = [
    (r"(?<![\w/.-])metrics\.h\b", "quality.h"),
    (r"(?<![\w/.-])metrics\.c\b", "quality.c"),
    (r"(?<![\w/.-])check_metrics\.c\b", "check_quality.c"),
    (r"\bDAED_METRICS_H\b", "DAED_QUALITY_H"),
    (r"(?<![\w/.-])train\.h\b", "trainer.h"),
    (r"\bDAED_TRAIN_H\b", "DAED_TRAINER_H"),
    (r"\bsuite_metrics\b", "suite_quality"),
]

def git(*a):
    return subprocess.run(["git", *a], check=True, capture_output=True, text=True).stdout

def move(old, new):
    if os.path.exists(old) and not os.path.exists(new):
        os.makedirs(os.path.dirname(new), exist_ok=True)
        git("mv", old, new)
        print(f"moved {old} -> {new}")

for name, new in HEADERS.items():
    move(f"include/daed/{name}.h", new)
for old, new in FILES.items():
    move(old, new)

def include_text(src_file, name):
    new = HEADERS[name]
    if new.startswith("include/"):
        return new[len("include/"):]
    here = os.path.dirname(src_file)
    return os.path.relpath(new, here) if here != os.path.dirname(new) else os.path.basename(new)

INC = re.compile(r'^(\s*#\s*include\s*)"daed/([a-z0-9_]+)\.h"', re.M)
SELF = {"scripts/rewrite-includes.sh", "scripts/check-layers.sh"}

def rewrite_c(path, text):
    def inc(m):
        name = m.group(2)
        if name not in HEADERS:
            return m.group(0)
        return f'{m.group(1)}"{include_text(path, name)}"'
    return INC.sub(inc, text)

# Paths in prose (docs, comments, scripts): include/daed/X.h -> its new place.
PATH = re.compile(r"\binclude/daed/([a-z0-9_]+)\.h\b")
def rewrite_paths(text):
    return PATH.sub(lambda m: HEADERS.get(m.group(1), m.group(0)), text)

def rewrite_words(text):
    for pat, rep in WORDS:
        text = re.sub(pat, rep, text)
    return text

files = git("ls-files").split("\n")
for f in files:
    if not f or f in SELF or not os.path.isfile(f) or "/node_modules/" in f:
        continue
    if not re.search(r"\.(c|h|md|py|sh|yaml|mk)$|^Makefile$|^Dockerfile$", f):
        continue
    if f.startswith(("tests/fixtures/", "tests/conformance/")):
        continue
    with open(f, encoding="utf-8", errors="surrogateescape") as fh:
        text = fh.read()
    new = text
    if f.endswith((".c", ".h")):
        new = rewrite_c(f, new)
    new = rewrite_paths(new)
    new = rewrite_words(new)
    if new != text:
        with open(f, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(new)
        print(f"rewrote {f}")
PY
