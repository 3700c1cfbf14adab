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
#   sh scripts/rewrite-includes.sh          # moves + includes + doc paths + symbols
#
# It also renames the functions that private headers of core, io and train export from
# libdaed.a without the dae_ prefix (SYMBOLS; src/serve's are renamed on their own branch).
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

# Exported by libdaed.a without dae_ (nm -g --defined-only), all used across files of their
# folder (so not static): the private tag stays after dae_.
SYMBOLS = [
    # core/model_internal.h
    "mdl_layer_label", "mdl_layer_shape", "mdl_layer_col_size",
    # io/modelfile_internal.h
    "mf_parse_calibration", "mf_act_type_name", "mf_arch_object", "mf_check_dup_keys",
    "mf_json_text", "mf_model_from_parsed", "mf_parse_config", "mf_parsed_config_free",
    # train/trainer_internal.h
    "tr_fill_batch", "tr_logf", "tr_make_perm", "tr_now_s", "tr_photo_pair",
    "tr_set_noise_map", "tr_start_attempt",
]
SYM = re.compile(r"(?<![\w])(" + "|".join(SYMBOLS) + r")\b")
STR = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')

def open_paren(code):
    """Index of the last '(' left open on this line (strings blanked), or -1; and the
    line's net count of open parentheses."""
    stack = []
    for i, ch in enumerate(code):
        if ch == "(":
            stack.append(i)
        elif ch == ")" and stack:
            stack.pop()
    return (stack[-1] if stack else -1), code.count("(") - code.count(")")

def rename_symbols(text, is_c):
    """dae_ before each symbol; in C, the continuation lines of a call or declaration whose
    open parenthesis a rename moved right move by as much, so they stay aligned."""
    out, shift, depth = [], 0, 0
    for line in text.split("\n"):
        if depth > 0 and shift and line.strip():
            line = " " * shift + line
        line, n = SYM.subn(r"dae_\1", line)
        if is_c:
            code = STR.sub(lambda m: '"' + "x" * (len(m.group(0)) - 2) + '"', line)
            at, net = open_paren(code)
            if depth > 0:
                depth += net
            elif n and at >= 0:
                shift = 4 * sum(1 for m in SYM.finditer(line[:at].replace("dae_", "")))
                depth = net
            if depth <= 0:
                shift = depth = 0
        out.append(line)
    return "\n".join(out)

# image.h once held the PNG, JPEG and base64 codecs too; now each has its own header named
# after its source (png.c, jpeg.c, base64.c). A C file that calls a codec gets its header,
# next to its image.h include (or after its last daed/ include, or its last include); a
# file that needs nothing of image.h itself any more (only base64) has that include
# replaced.
CODECS = {
    "png": re.compile(r"\bdae_png_(decode|encode|encode_image)\b"),
    "jpeg": re.compile(r"\bdae_jpeg_\w+"),
    "base64": re.compile(r"\bdae_base64_\w+"),
}
IMAGE_USE = re.compile(r"\bdae_image\w*|\bdae_png_write_file\b")
INC_LINE = re.compile(r'^[ \t]*#\s*include\s*"daed/[a-z0-9_/]+\.h".*$', re.M)
ANY_INC = re.compile(r'^[ \t]*#\s*include\s*["<].*$', re.M)

def codec_includes(path, text):
    if not os.path.exists("include/daed/io/png.h"):
        return text
    own = os.path.basename(path)[:-2] if path.startswith("include/daed/io/") else None
    body = INC_LINE.sub("", text)
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", body, flags=re.S)
    need = [k for k, r in CODECS.items() if k != own and r.search(body)
            and f'"daed/io/{k}.h"' not in text]
    if not need:
        return text
    add = "".join(f'#include "daed/io/{k}.h"\n' for k in need)
    img = re.search(r'^[ \t]*#\s*include\s*"daed/io/image\.h"[^\n]*\n', text, re.M)
    if img:
        keep = img.group(0) if IMAGE_USE.search(body) or need != ["base64"] else ""
        return text[:img.start()] + keep + add + text[img.end():]
    last = list(INC_LINE.finditer(text)) or list(ANY_INC.finditer(text))
    if not last:
        return text
    at = last[-1].end() + 1
    return text[:at] + add + text[at:]

# Words renamed in one file only: the unit suite of the renamed module (CK_RUN_SUITE=quality).
FILE_WORDS = {
    "tests/check_quality.c": [(r'\b(suite|tcase)_create\("metrics"\)', r'\1_create("quality")')],
}

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
        new = codec_includes(f, new)
    new = rewrite_paths(new)
    new = rewrite_words(new)
    for pat, rep in FILE_WORDS.get(f, []):
        new = re.sub(pat, rep, new)
    new = rename_symbols(new, f.endswith((".c", ".h")))
    if new != text:
        with open(f, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(new)
        print(f"rewrote {f}")
PY
