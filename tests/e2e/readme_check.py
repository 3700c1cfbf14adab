#!/usr/bin/env python3
"""readme_check.py — README.md's console blocks, run as written against a fresh daed.

Every ```console block of README.md whose commands are not marked
`<!-- readme-test: skip (why) -->` (on one of the 3 lines before the block) is run in order,
command by command, in a scratch folder laid out like a fresh clone after `make run`:
build/ and examples/ of this checkout (links), a copy of models/ (the README trains into
it and reloads), served by `build/daed --models ./models` as `make run` serves it, on a free
loopback port that replaces localhost:8080 in the commands. Each command's output (stdout
and stderr) is cut as the README cuts it (number arrays after four values with "...",
lines after 400 characters) and compared with the README's: the text exactly, numbers
within 2 % (or 1e-3), durations (a number before "s", "ms", "img/s") not at all, and the
BLAS line of dae-train free (it names the CPU).

  readme_check.py [--build DIR]            check; exit 1 on any difference
  readme_check.py --update                 rewrite the blocks' outputs in README.md
Needs curl, jq and file (the README's commands use them).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NUM = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
DURATION = re.compile(r"^\s*(?:s\b|ms\b|img/s\b)")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip")


def blocks(lines):
    """[(first line index, last line index (the closing fence), [(cmd, [expected])])]"""
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```console":
            start, j = i, i + 1
            while lines[j].strip() != "```":
                j += 1
            skip = any(SKIP.search(x) for x in lines[max(0, i - 3):i])
            entries = []
            for x in lines[start + 1:j]:
                if x.lstrip().startswith("$ "):
                    entries.append((x.lstrip()[2:], []))
                elif entries:
                    entries[-1][1].append(x)
            for _, exp in entries:
                while exp and not exp[-1].strip():
                    exp.pop()
            if not skip:
                out.append((start, j, entries))
            i = j
        i += 1
    return out


def trim(text):
    arr = re.compile(r"((-?[0-9][0-9.e+-]*,){4})(-?[0-9][0-9.e+-]*,)+(-?[0-9][0-9.e+-]*)")
    res = []
    for line in text.rstrip("\n").split("\n") if text.strip() else []:
        line = arr.sub(r"\1...", line)
        if len(line) > 400:
            line = f"{line[:400]}... ({len(line) - 400} more characters)"
        res.append(line)
    return res


def normalise(line):
    return re.sub(r"BLAS: .*", "BLAS: ...", line)


def same_line(exp, got):
    exp, got = normalise(exp), normalise(got)
    ne, ng = NUM.split(exp), NUM.split(got)
    ve, vg = NUM.findall(exp), NUM.findall(got)
    if ne != ng or len(ve) != len(vg):
        return False
    for k, (a, b) in enumerate(zip(ve, vg)):
        if DURATION.match(ne[k + 1]):
            continue
        fa, fb = float(a), float(b)
        if abs(fa - fb) > max(0.02 * abs(fa), 1e-3):
            return False
    return True


class Daemon:
    def __init__(self, build, work):
        self.port_file = os.path.join(work, ".port")
        self.log = open(os.path.join(work, ".daed.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(build, "daed"), "--bind", "127.0.0.1", "--port", "0",
             "--port-file", self.port_file, "--models", "./models"],
            cwd=work, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            if os.path.exists(self.port_file) and open(self.port_file).read().strip():
                self.port = int(open(self.port_file).read())
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit("readme_check: daed did not start: " + open(self.log.name).read()[-2000:])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("DAED_BUILD", "build"))
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    a = ap.parse_args()
    build = a.build if os.path.isabs(a.build) else os.path.join(ROOT, a.build)
    lines = open(a.readme).read().split("\n")
    found = blocks(lines)
    work = tempfile.mkdtemp(prefix="daed-readme.")
    try:
        os.symlink(build, os.path.join(work, "build"))
        os.symlink(os.path.join(ROOT, "examples"), os.path.join(work, "examples"))
        os.symlink(os.path.join(ROOT, "openapi.yaml"), os.path.join(work, "openapi.yaml"))
        shutil.copytree(os.path.join(ROOT, "models"), os.path.join(work, "models"))
        d = Daemon(build, work)
        passed = failed = 0
        new = list(lines)
        results = []
        for start, end, entries in found:
            outs = []
            for cmd, exp in entries:
                run = cmd.replace("http://localhost:8080", f"http://127.0.0.1:{d.port}")
                try:
                    r = subprocess.run(["bash", "-c", run], cwd=work, capture_output=True,
                                       text=True, timeout=120)
                    got = trim(r.stdout + r.stderr)
                except subprocess.TimeoutExpired:
                    got = ["(no answer within 120 s)"]
                ok = len(got) == len(exp) and all(same_line(x, y) for x, y in zip(exp, got))
                outs.append((cmd, got))
                if ok:
                    passed += 1
                else:
                    failed += 1
                    if not a.update:
                        print(f"README.md:{start + 1}: FAIL $ {cmd}")
                        for x in exp:
                            print(f"    expected: {x}")
                        for x in got:
                            print(f"    got:      {x}")
            results.append((start, end, outs))
        d.stop()
        if a.update:
            for start, end, outs in reversed(results):
                indent = re.match(r"\s*", lines[start]).group(0)
                body = []
                for i, (cmd, got) in enumerate(outs):
                    body.append(f"{indent}$ {cmd}")
                    body += [f"{indent}{x}" if x else x for x in got]
                    # keep the README's layout: a blank line between commands when it had one
                    if i + 1 < len(outs) and any(
                            not x.strip() for x in lines[start + 1:end]):
                        body.append("")
                new[start + 1:end] = body
            open(a.readme, "w").write("\n".join(new))
            print(f"readme_check: rewrote {len(results)} blocks ({passed} unchanged, {failed} changed)")
            return 0
        print(f"readme_check: {passed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
