#!/usr/bin/env python3
"""pngsuite_ref.py — reference pixels for the PngSuite conformance test (stdlib only).

An independent PNG decoder (zlib, struct; no libpng) with the sample rules daed documents,
which are those of PIL and OpenCV: samples as stored (gAMA, sRGB, cHRM, iCCP, sBIT and
bKGD ignored), bit depths below 8 scaled to 0..255 (v * 255 / (2^d - 1)), 16-bit reduced to
the high byte, palettes expanded to RGB, tRNS turned into an alpha channel (compared at the
stored depth). Gray sources give 1 channel, colour and palette ones 3, plus alpha if any.

    python3 scripts/pngsuite_ref.py DIR > tests/conformance/pngsuite/expected.txt

writes one line per file: `name w h channels alpha crc32` (CRC-32 of the interleaved 8-bit
samples, row by row) for the valid files, `name error` for the x* files (which this
decoder must refuse too). tests/check_pngsuite.c compares daed's decoder to it.
"""
import os
import struct
import sys
import zlib

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def chunks(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("signature")
    p = 8
    while p + 12 <= len(data):
        n, kind = struct.unpack(">I4s", data[p:p + 8])
        body = data[p + 8:p + 8 + n]
        if len(body) != n or p + 12 + n > len(data):
            raise ValueError("truncated")
        crc, = struct.unpack(">I", data[p + 8 + n:p + 12 + n])
        if zlib.crc32(kind + body) != crc:
            raise ValueError("CRC " + kind.decode("latin-1"))
        yield kind, body
        if kind == b"IEND":
            return
        p += 12 + n


def unfilter(raw, w, h, bpp_bits, chans):
    """Rows of samples (ints) for one pass of w x h."""
    stride = (w * bpp_bits + 7) // 8
    bpp = max(1, bpp_bits // 8)
    prev = bytearray(stride)
    rows, p = [], 0
    for _ in range(h):
        ft, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        if len(line) != stride:
            raise ValueError("short IDAT")
        p += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
            elif ft != 0:
                raise ValueError("filter type %d" % ft)
        rows.append(line)
        prev = line
    return rows, p


def samples(line, w, depth, chans):
    if depth == 8:
        return list(line[:w * chans])
    if depth == 16:
        return [line[2 * i] << 8 | line[2 * i + 1] for i in range(w * chans)]
    per, mask, out = 8 // depth, (1 << depth) - 1, []
    for i in range(w * chans):
        out.append(line[i // per] >> (8 - depth * (i % per + 1)) & mask)
    return out


def decode(data):
    ihdr, plte, trns, idat = None, None, None, b""
    for kind, body in chunks(data):
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            plte = body
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IDAT":
            idat += body
        elif kind[0] & 32 == 0 and kind not in (b"IEND",):
            raise ValueError("unknown critical chunk")
    if ihdr is None or not idat:
        raise ValueError("no IHDR or IDAT")
    w, h, depth, ct, comp, filt, lace = ihdr
    if ct not in CHANNELS or depth not in DEPTHS[ct] or comp or filt or lace > 1:
        raise ValueError("IHDR")
    if ct == 3 and plte is None:
        raise ValueError("no PLTE")
    chans = CHANNELS[ct]
    raw = zlib.decompress(idat)
    img = [[None] * w for _ in range(h)]
    passes = ADAM7 if lace else [(0, 0, 1, 1)]
    p = 0
    for x0, y0, dx, dy in passes:
        pw, ph = (w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy
        if pw <= 0 or ph <= 0:
            continue
        rows, used = unfilter(raw[p:], pw, ph, depth * chans, chans)
        p += used
        for j, line in enumerate(rows):
            s = samples(line, pw, depth, chans)
            for i in range(pw):
                img[y0 + j * dy][x0 + i * dx] = s[i * chans:(i + 1) * chans]
    return w, h, depth, ct, plte, trns, img


def to8(v, depth):
    if depth == 16:
        return v >> 8
    return v * 255 // ((1 << depth) - 1)


def pixels(w, h, depth, ct, plte, trns, img):
    """(channels, alpha, interleaved bytes) by the rules in the module comment."""
    out = bytearray()
    colour = ct in (2, 3, 6)
    alpha = ct in (4, 6) or trns is not None
    key = None
    if trns is not None and ct == 0:
        key = struct.unpack(">H", trns[:2])
    elif trns is not None and ct == 2:
        key = struct.unpack(">HHH", trns[:6])
    for row in img:
        for s in row:
            if ct == 3:
                i = s[0]
                if 3 * i + 3 > len(plte):
                    raise ValueError("palette index")
                px = list(plte[3 * i:3 * i + 3])
                a = trns[i] if trns is not None and i < len(trns) else 255
            else:
                n = 3 if colour else 1
                px = [to8(v, depth) for v in s[:n]]
                if ct in (4, 6):
                    a = to8(s[n], depth)
                else:
                    a = 0 if key is not None and tuple(s[:n]) == key else 255
            out += bytes(px + ([a] if alpha else []))
    return (3 if colour else 1), int(alpha), bytes(out)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "../shared/conformance/pngsuite"
    for name in sorted(os.listdir(d)):
        if not name.endswith(".png") or name == "PngSuite.png":
            continue
        data = open(os.path.join(d, name), "rb").read()
        try:
            w, h, depth, ct, plte, trns, img = decode(data)
            c, a, px = pixels(w, h, depth, ct, plte, trns, img)
        except (ValueError, zlib.error, struct.error) as e:
            if not name.startswith("x"):
                sys.exit("%s: reference decoder failed: %s" % (name, e))
            print(name, "error")
            continue
        if name.startswith("x"):
            sys.exit("%s: an invalid file decoded" % name)
        print(name, w, h, c, a, "%08x" % zlib.crc32(px))


if __name__ == "__main__":
    main()
