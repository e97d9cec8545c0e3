"""Small PNG and JPEG test images for tests/io_image_test.ts.

PNGs are built chunk by chunk with zlib (palette, 1-bit grey, grey+alpha, 16-bit RGBA), so the
tests check fast-png's decoding plus our conversions against known pixels. JPEGs need OpenCV:
run with Debian's python (/usr/bin/python3 make_images.py). Pixel pattern as in ../tiff.
"""
import struct
import zlib

import numpy as np


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(width, height, depth, colour, rows, palette=None):
    """rows: list of raw scanline bytes (filter byte 0 is prepended here)."""
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    out += chunk(b"IDAT", zlib.compress(b"".join(b"\0" + r for r in rows)))
    return out + chunk(b"IEND", b"")


def save(name, content):
    with open(name, "wb") as f:
        f.write(content)


if __name__ == "__main__":
    h, w = 6, 10
    i = np.arange(h * w).reshape(h, w)
    # palette: 4 colours, index = i % 4
    pal = [0, 0, 0, 255, 0, 0, 0, 255, 0, 10, 20, 30]
    idx = (i % 4).astype(np.uint8)
    save("palette.png", png(w, h, 8, 3, [r.tobytes() for r in idx], pal))
    # 1-bit grey: bit = (i % 3 == 0)
    bits = (i % 3 == 0).astype(np.uint8)
    save("grey_1bit.png", png(w, h, 1, 0, [np.packbits(r).tobytes() for r in bits]))
    # grey + alpha, 8-bit: grey = i * 4, alpha = 255 - i
    ga = np.stack([i * 4, 255 - i], -1).astype(np.uint8)
    save("grey_alpha.png", png(w, h, 8, 4, [r.tobytes() for r in ga]))
    # RGBA 16-bit big-endian: r = i * 1000, g = i * 7, b = 65535 - i, a = 1
    rgba = np.stack([i * 1000, i * 7, 65535 - i, np.ones_like(i)], -1).astype(">u2")
    save("rgba16.png", png(w, h, 16, 6, [r.tobytes() for r in rgba]))
    full = png(w, h, 8, 4, [r.tobytes() for r in ga])
    save("bad_truncated.png", full[: len(full) // 2])
    try:
        import cv2
    except ImportError:
        raise SystemExit("JPEGs need OpenCV: run with /usr/bin/python3")
    grey = (np.arange(16 * 24).reshape(16, 24) % 64 * 4).astype(np.uint8)
    cv2.imwrite("grey.jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 100])
    colour = np.zeros((16, 24, 3), np.uint8)
    colour[..., 2] = 200  # OpenCV is BGR: index 2 is red
    colour[:, 12:, 1] = 100
    cv2.imwrite("colour.jpg", colour, [cv2.IMWRITE_JPEG_QUALITY, 100])
    j = open("colour.jpg", "rb").read()
    save("bad_truncated.jpg", j[: len(j) // 3])
