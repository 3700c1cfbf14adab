#!/usr/bin/python3
"""openapi_check.py — checks captured daed responses against openapi.yaml.

Usage: openapi_check.py [--partial] OPENAPI.yaml MANIFEST

MANIFEST has one captured exchange per line, tab-separated:
    METHOD  PATH?QUERY  REQ_CONTENT_TYPE|-  REQ_BODY_FILE|-  STATUS  HEADERS_FILE  BODY_FILE

For every exchange the (path, method, status, media type) must be documented, and:
  * a JSON body must validate against the documented schema;
  * image/png must be a PNG, application/yaml must parse, text/plain must be UTF-8;
  * headers the document marks `required: true` must be present;
  * a 2xx answer's JSON request body must validate against the requestBody schema, and its
    query parameters must be documented and valid (the document describes what works).
Finally every documented operation must have been seen answering 2xx at least once
(not with --partial).

OpenAPI 3.0 schema objects become JSON Schema 2020-12: `nullable` adds null, components are
$defs, `format: byte` is checked as base64. Objects are taken as *closed*: an object schema
that lists `properties` and says nothing of `additionalProperties` rejects names it does not
list (through allOf too), so a field the daemon sends but the document omits is a failure.
A 404 on a path the document does not have must be the generic Error.
A 405 on a documented path with an undocumented method takes that path's 405 answer.
Exit status: 0 all good, 1 a mismatch, 2 bad usage or input.
"""
import base64
import binascii
import copy
import json
import re
import sys
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import yaml

REF_PREFIX = "#/components/schemas/"
ANNOTATIONS = ("example", "xml", "externalDocs", "discriminator", "deprecated")


def to_json_schema(node, in_all_of=False):
    """One OpenAPI 3.0 schema object -> JSON Schema 2020-12 (a new object)."""
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, val in node.items():
        if key in ANNOTATIONS or key == "nullable":
            continue
        if key == "$ref":
            name = val[len(REF_PREFIX):] if val.startswith(REF_PREFIX) else None
            if name is None:
                raise ValueError(f"unsupported $ref {val}")
            # Inside allOf the referenced object must stay open: the allOf closes it.
            out[key] = "#/$defs/" + name + ("__open" if in_all_of else "")
        elif key == "allOf":
            out[key] = [to_json_schema(x, in_all_of=True) for x in val]
        elif key in ("oneOf", "anyOf"):
            out[key] = [to_json_schema(x) for x in val]
        elif key in ("properties", "patternProperties"):
            out[key] = {k: to_json_schema(v) for k, v in val.items()}
        elif key in ("items", "not", "additionalProperties"):
            out[key] = to_json_schema(val)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(val, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            if val and bound in node:
                out[key] = node[bound]
        else:
            out[key] = copy.deepcopy(val)
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        bound = "minimum" if key == "exclusiveMinimum" else "maximum"
        if node.get(key) is True:
            out.pop(bound, None)
    if node.get("nullable"):
        if "type" in out:
            t = out["type"]
            out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    closable = "properties" in node or "allOf" in node
    if closable and not in_all_of and "additionalProperties" not in node:
        out["unevaluatedProperties"] = False
    return out


class Doc:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.raw = yaml.safe_load(f)
        comps = self.raw.get("components", {})
        defs = {}
        for name, sch in comps.get("schemas", {}).items():
            defs[name] = to_json_schema(sch)
            defs[name + "__open"] = to_json_schema(sch, in_all_of=True)
        self.defs = defs
        self.comps = comps
        self.paths = []
        for p in self.raw["paths"]:
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"
            self.paths.append((p, re.compile(rx)))
        # literal paths before templated ones
        self.paths.sort(key=lambda x: ("{" in x[0], x[0]))
        fmt = jsonschema.FormatChecker()

        @fmt.checks("byte", raises=(binascii.Error, ValueError, TypeError))
        def _b64(v):
            if not isinstance(v, str):
                return True
            base64.b64decode(v, validate=True)
            return True

        self.fmt = fmt

    def resolve(self, node, kind):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            prefix = f"#/components/{kind}/"
            if not ref.startswith(prefix):
                raise ValueError(f"unsupported $ref {ref} for {kind}")
            node = self.comps[kind][ref[len(prefix):]]
        return node

    def validator(self, schema):
        js = to_json_schema(schema)
        js = dict(js) if isinstance(js, dict) else js
        js["$defs"] = self.defs
        js["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return jsonschema.Draft202012Validator(js, format_checker=self.fmt)

    def match_path(self, path):
        for p, rx in self.paths:
            if rx.match(path):
                return p
        return None


def media(ct):
    return ct.split(";")[0].strip().lower() if ct else ""


def read_headers(fname):
    """The last response's headers (curl -D may hold a 100 Continue first)."""
    with open(fname, "rb") as f:
        blocks = f.read().decode("latin-1").replace("\r\n", "\n").strip().split("\n\n")
    hdrs = {}
    for line in blocks[-1].split("\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return hdrs


def errors_of(validator, inst):
    # A property that fails its schema is also "unevaluated": list the real cause first.
    errs = sorted(validator.iter_errors(inst),
                  key=lambda e: (e.validator == "unevaluatedProperties", [str(x) for x in e.path]))
    return ["%s at /%s" % (e.message[:300], "/".join(str(x) for x in e.absolute_path))
            for e in errs[:3]]


def check_body(doc, ctype, schema, body):
    """Problems with a response body of media type ctype against its schema."""
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            inst = json.loads(body)
        except ValueError as e:
            return [f"body is not JSON: {e}"]
        return errors_of(doc.validator(schema or {}), inst)
    if ctype == "image/png":
        return [] if body.startswith(b"\x89PNG\r\n\x1a\n") else ["body is not a PNG"]
    if ctype == "image/jpeg":
        return [] if body.startswith(b"\xff\xd8\xff") else ["body is not a JPEG"]
    if ctype == "application/yaml":
        try:
            yaml.safe_load(body)
        except yaml.YAMLError as e:
            return [f"body is not YAML: {e}"]
        return []
    if ctype.startswith("text/"):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            return [f"body is not UTF-8 text: {e}"]
        return []
    return []


def coerce(value, schema):
    t = schema.get("type")
    try:
        if t == "integer":
            return int(value)
        if t == "number":
            return float(value)
    except ValueError:
        return value
    return value


def check_request(doc, op, query, req_ct, req_body_file):
    """Problems with an accepted request: undocumented query parameters, a body off-schema."""
    probs = []
    params = [doc.resolve(p, "parameters") for p in op.get("parameters", [])]
    qparams = {p["name"]: p for p in params if p.get("in") == "query"}
    for k, v in parse_qsl(query, keep_blank_values=True):
        if k not in qparams:
            probs.append(f"query parameter {k} is not documented")
            continue
        sch = qparams[k].get("schema", {})
        probs += [f"query {k}={v}: {e}" for e in errors_of(doc.validator(sch), coerce(v, sch))]
    rb = doc.resolve(op.get("requestBody"), "requestBodies") if op.get("requestBody") else None
    if rb and req_body_file != "-":
        content = rb.get("content", {})
        mt = media(req_ct) or "application/octet-stream"
        if mt not in content:
            probs.append(f"request media type {mt} is not documented")
        elif mt == "application/json":
            with open(req_body_file, "rb") as f:
                body = f.read()
            probs += ["request body: " + p for p in check_body(doc, mt, content[mt].get("schema"), body)]
    return probs


def check_one(doc, method, target, req_ct, req_body_file, status, hdr_file, body_file, seen):
    url = urlsplit(target)
    path = doc.match_path(url.path)
    hdrs = read_headers(hdr_file)
    with open(body_file, "rb") as f:
        body = f.read()
    ctype = media(hdrs.get("content-type"))
    if path is None:
        if status != "404":
            return [f"status {status} on a path the document does not have"]
        return check_body(doc, ctype, {"$ref": REF_PREFIX + "Error"}, body)
    item = doc.raw["paths"][path]
    op_method = "get" if method == "HEAD" else method.lower()
    op = item.get(op_method)
    if op is None:
        if status != "405":
            return [f"{method} is not documented on {path} (status {status})"]
        op = next((o for m, o in item.items() if isinstance(o, dict) and "405" in o.get("responses", {})), None)
        if op is None:
            return [f"405 is not documented on {path}"]
    else:
        seen.setdefault((path, op_method), set()).add(status)
    responses = op.get("responses", {})
    resp = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
    if resp is None:
        return [f"status {status} is not documented for {op_method.upper()} {path}"]
    resp = doc.resolve(resp, "responses")
    probs = []
    for name, h in resp.get("headers", {}).items():
        h = doc.resolve(h, "headers")
        if name.lower() not in hdrs:
            if h.get("required"):
                probs.append(f"required header {name} missing")
            continue
        sch = h.get("schema", {})
        probs += [f"header {name}: {e}"
                  for e in errors_of(doc.validator(sch), coerce(hdrs[name.lower()], sch))]
    content = resp.get("content")
    if not content:
        if body and method != "HEAD":
            probs.append("a body where the document has none")
        return probs
    if ctype not in content:
        return probs + [f"content type {ctype or '(none)'} is not documented for "
                        f"{op_method.upper()} {path} {status} (documented: {', '.join(content)})"]
    if method != "HEAD":
        probs += check_body(doc, ctype, content[ctype].get("schema"), body)
    if status.startswith("2") and op is item.get(op_method):
        probs += check_request(doc, op, url.query, req_ct, req_body_file)
    return probs


def main(argv):
    partial = "--partial" in argv
    argv = [a for a in argv if a != "--partial"]
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    doc = Doc(argv[1])
    seen = {}
    fails = 0
    n = 0
    with open(argv[2], encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    for ln in lines:
        fields = ln.split("\t")
        if len(fields) != 7:
            print(f"openapi_check: bad manifest line: {ln!r}", file=sys.stderr)
            return 2
        method, target, req_ct, req_body, status, hdr_file, body_file = fields
        n += 1
        probs = check_one(doc, method, target, req_ct, req_body, status, hdr_file, body_file, seen)
        what = f"{method} {target} -> {status}"
        if probs:
            fails += 1
            print(f"FAIL: openapi: {what}: " + "; ".join(probs))
        else:
            print(f"ok: openapi: {what}")
    for p in ([] if partial else doc.raw["paths"]):
        for m, op in doc.raw["paths"][p].items():
            if m not in ("get", "post", "put", "delete", "patch") or not isinstance(op, dict):
                continue
            got = seen.get((p, m), set())
            if not any(s.startswith("2") for s in got):
                fails += 1
                print(f"FAIL: openapi: {m.upper()} {p} never answered 2xx in the test "
                      f"(seen: {', '.join(sorted(got)) or 'nothing'})")
    print(f"openapi_check: {n} exchanges, {fails} failure(s)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
