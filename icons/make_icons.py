#!/usr/bin/env python3
"""Draws Stator's app icon (a stator ring with slots around a rotor dot) as RGBA PNGs.

Pure standard library, so it runs anywhere; the PNGs are committed and this script documents how
they were made: `python3 icons/make_icons.py`.
"""
import math
import os
import struct
import zlib

BG = (52, 58, 64)        # calm dark grey panel
RING = (200, 206, 212)   # light grey steel
ACCENT = (64, 156, 255)  # rotor, the only colour


def pixel(x, y, n):
    """Colour at pixel centre (x, y) of an n x n icon, with 4x4 supersampling for smooth edges."""
    acc = [0.0, 0.0, 0.0, 0.0]
    for sy in range(4):
        for sx in range(4):
            u = (x + (sx + 0.5) / 4) / n * 2 - 1
            v = (y + (sy + 0.5) / 4) / n * 2 - 1
            c = sample(u, v)
            if c is None:
                continue
            for i in range(3):
                acc[i] += c[i] / 16
            acc[3] += 255 / 16
    if acc[3] == 0:
        return (0, 0, 0, 0)
    a = acc[3] / 255
    return tuple(int(acc[i] / a) for i in range(3)) + (int(acc[3]),)


def sample(u, v):
    # Rounded square background.
    r = 0.22
    qx, qy = max(abs(u) - (1 - r), 0), max(abs(v) - (1 - r), 0)
    if math.hypot(qx, qy) > r:
        return None
    d = math.hypot(u, v)
    ang = math.atan2(v, u)
    # Stator ring with 12 inward teeth (slots between them).
    if 0.58 <= d <= 0.78:
        return RING
    if 0.42 <= d < 0.58:
        slot = (ang / (2 * math.pi) * 12) % 1.0
        if 0.3 < slot < 0.7:
            return RING
    # Rotor.
    if d <= 0.26:
        return ACCENT
    return BG


def png(n):
    rows = []
    for y in range(n):
        row = bytearray([0])
        for x in range(n):
            row.extend(pixel(x, y, n))
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(t, data):
        c = struct.pack(">I", len(data)) + t + data
        return c + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", n, n, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for name, n in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        with open(os.path.join(here, name), "wb") as f:
            f.write(png(n))
        print("wrote", name)
