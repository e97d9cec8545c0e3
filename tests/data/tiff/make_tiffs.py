"""Builds the small TIFF test files in this folder, byte by byte (numpy + zlib only: no tifffile).

Run from this folder: python3 make_tiffs.py. Every file holds a known pattern so the Deno tests
can check the decoded pixels: pattern(shape, dtype)[i] = (i * 37 + 11) % modulus, cast.
The TIFF layout code here is independent of io/tiff_write.ts on purpose.
"""
import struct
import zlib

import numpy as np


def pattern(shape, dtype):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        v = ((i * 37 + 11) % 1000) / 7.0 - 50.0
    elif dt.kind == "i":
        v = (i * 37 + 11) % 2000 - 1000
    else:
        v = (i * 37 + 11) % min(2 ** (8 * dt.itemsize), 70001)
    return v.astype(dt).reshape(shape)


def packbits(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        run = 1
        while i + run < n and run < 128 and data[i + run] == data[i]:
            run += 1
        if run > 1:
            out += bytes([257 - run, data[i]])
            i += run
            continue
        j = i
        while j < n and j - i < 128 and not (j + 1 < n and data[j + 1] == data[j]):
            j += 1
        j = max(j, i + 1)
        out += bytes([j - i - 1]) + data[i:j]
        i = j
    return bytes(out)


def lzw(data: bytes) -> bytes:
    """TIFF LZW: MSB-first codes, ClearCode 256, EOI 257, early code-width change."""
    out, acc, nbits = bytearray(), 0, 0

    def put(code, width):
        nonlocal acc, nbits
        acc = (acc << width) | code
        nbits += width
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)

    table = {bytes([k]): k for k in range(256)}
    nxt, width = 258, 9
    put(256, width)
    w = b""
    for byte in data:
        wc = w + bytes([byte])
        if wc in table:
            w = wc
            continue
        put(table[w], width)
        table[wc] = nxt
        nxt += 1
        if nxt + 1 > (1 << width) and width < 12:
            width += 1
        if nxt >= 4093:
            put(256, width)
            table = {bytes([k]): k for k in range(256)}
            nxt, width = 258, 9
        w = bytes([byte])
    if w:
        put(table[w], width)
        nxt += 1
        if nxt + 1 > (1 << width) and width < 12:
            width += 1
    put(257, width)
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


COMPRESS = {1: lambda b: b, 5: lzw, 8: zlib.compress, 32773: packbits}
FMT = {"u": 1, "i": 2, "f": 3}


def blocks(page, tile, rows_per_strip):
    """Yields the raw blocks of one plane [H, W, S] (chunky) in file order."""
    h, w = page.shape[:2]
    if tile:
        th, tw = tile
        for y in range(0, h, th):
            for x in range(0, w, tw):
                blk = np.zeros((th, tw) + page.shape[2:], page.dtype)
                part = page[y:y + th, x:x + tw]
                blk[:part.shape[0], :part.shape[1]] = part
                yield blk
    else:
        for y in range(0, h, rows_per_strip):
            yield page[y:y + rows_per_strip]


def build(pages, *, compression=1, tile=None, planar=1, bigtiff=False, order="<",
          description=None, rows_per_strip=5, width=None, bits=None, fmt=None, subfile=None):
    """pages: list of arrays [H, W] or [H, W, S] (chunky); planar=2 stores samples as planes;
    subfile: NewSubfileType per page (1: reduced resolution)."""
    val_size, off_fmt = (8, "Q") if bigtiff else (4, "I")
    cnt_fmt = "Q" if bigtiff else "H"
    entry_size = 20 if bigtiff else 12
    data = bytearray()
    head = 16 if bigtiff else 8
    ifd_specs = []
    for page in pages:
        arr = page if page.ndim == 3 else page[:, :, None]
        arr = arr.astype(arr.dtype.newbyteorder(order))
        planes = [arr] if planar == 1 else [arr[:, :, k:k + 1] for k in range(arr.shape[2])]
        offsets, counts = [], []
        for plane in planes:
            for blk in blocks(plane, tile, rows_per_strip):
                raw = COMPRESS[compression](np.ascontiguousarray(blk).tobytes())
                offsets.append(head + len(data))
                counts.append(len(raw))
                data += raw
                if len(data) % 2:
                    data += b"\0"
        h, w, s = arr.shape
        tags = {
            256: (4, [width if width is not None else w]),
            257: (4, [h]),
            258: (3, [bits or arr.dtype.itemsize * 8] * s),
            259: (3, [compression]),
            262: (3, [2 if s == 3 else 1]),
            277: (3, [s]),
            284: (3, [planar]),
            339: (3, [fmt or FMT[arr.dtype.kind]] * s),
        }
        if tile:
            tags[322] = (4, [tile[1]])
            tags[323] = (4, [tile[0]])
            tags[324] = (16 if bigtiff else 4, offsets)
            tags[325] = (16 if bigtiff else 4, counts)
        else:
            tags[273] = (16 if bigtiff else 4, offsets)
            tags[278] = (4, [rows_per_strip])
            tags[279] = (16 if bigtiff else 4, counts)
        if subfile is not None:
            tags[254] = (4, [subfile[len(ifd_specs)]])
        if description is not None and not ifd_specs:
            tags[270] = (2, description.encode() + b"\0")
        ifd_specs.append(tags)
    out = bytearray()
    o = order
    out += (b"II" if o == "<" else b"MM")
    out += struct.pack(o + "H", 43 if bigtiff else 42)
    if bigtiff:
        out += struct.pack(o + "HHQ", 8, 0, 0)
    else:
        out += struct.pack(o + "I", 0)
    out += data
    type_fmt = {2: "B", 3: "H", 4: "I", 16: "Q"}
    first_link = 8 if bigtiff else 4
    link_at = first_link
    for tags in ifd_specs:
        if len(out) % 2:
            out += b"\0"
        ifd_at = len(out)
        struct.pack_into(o + off_fmt, out, link_at, ifd_at)
        n = len(tags)
        ifd_len = (8 if bigtiff else 2) + n * entry_size + val_size
        extra_at = ifd_at + ifd_len
        body, extra = bytearray(), bytearray()
        body += struct.pack(o + ("Q" if bigtiff else cnt_fmt), n)
        for tag in sorted(tags):
            typ, vals = tags[tag]
            raw = bytes(vals) if typ == 2 else struct.pack(o + type_fmt[typ] * len(vals), *vals)
            body += struct.pack(o + "HH" + ("Q" if bigtiff else "I"), tag, typ, len(vals))
            if len(raw) <= val_size:
                body += raw + b"\0" * (val_size - len(raw))
            else:
                body += struct.pack(o + off_fmt, extra_at + len(extra))
                extra += raw + (b"\0" if len(raw) % 2 else b"")
        link_at = ifd_at + len(body)
        body += struct.pack(o + off_fmt, 0)
        out += body + extra
    return bytes(out)


def save(name, content):
    with open(name, "wb") as f:
        f.write(content)


OME = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/'
       'OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="{order}" '
       'Type="uint16" SizeX="{x}" SizeY="{y}" SizeZ="{z}" SizeC="{c}" SizeT="1">'
       '<Channel ID="Channel:0:0" SamplesPerPixel="1"/><Channel ID="Channel:0:1" '
       'SamplesPerPixel="1"/><TiffData/></Pixels></Image></OME>')

if __name__ == "__main__":
    g = pattern((12, 10), "uint16")
    save("lzw_u16.tif", build([pattern((40, 50), "uint16")], compression=5, rows_per_strip=40))
    save("packbits_u8.tif", build([pattern((12, 10), "uint8")], compression=32773))
    save("deflate_tiled_u16.tif", build([g], compression=8, tile=(16, 16)))
    save("bigtiff_u16.tif", build([g], bigtiff=True))
    save("bigendian_i16.tif", build([pattern((12, 10), "int16")], order=">"))
    save("f64.tif", build([pattern((12, 10), "float64")]))
    save("i32_lzw.tif", build([pattern((12, 10), "int32")], compression=5))
    rgb = pattern((12, 10, 3), "uint8")
    save("rgb_chunky.tif", build([rgb], compression=8))
    save("rgb_planar_tiled.tif", build([rgb], planar=2, tile=(16, 16), compression=32773))
    stack = pattern((4, 12, 10), "uint8")
    save("stack_z.tif", build(list(stack)))
    # OME: C=2, Z=3, pages in XYZCT order (Z fastest) -> axes CZYX
    ome = pattern((2, 3, 12, 10), "uint16")
    save("ome_czyx.ome.tif", build([p for c in ome for p in c], compression=8,
                                   description=OME.format(order="XYZCT", x=10, y=12, z=3, c=2)))
    # ImageJ hyperstack: 3 slices x 2 channels, czt order (channel fastest) -> ZCYX
    ij = pattern((3, 2, 12, 10), "uint16")
    desc = "ImageJ=1.53t\nimages=6\nchannels=2\nslices=3\nhyperstack=true\nmode=grayscale\n"
    save("imagej_zcyx.tif", build([p for z in ij for p in z], description=desc))
    # a pyramid stored as pages: 2 channel pages at full resolution, then 2 reduced levels
    c2 = pattern((2, 30, 40), "uint16")
    levels = [c2[0], c2[1], c2[0, ::2, ::2], c2[0, ::4, ::4]]
    desc = "ImageJ=1.53t\nimages=2\nchannels=2\nmode=grayscale\n"
    save("pyramid_c2_u16.tif", build(levels, compression=8, description=desc,
                                     subfile=[0, 0, 1, 1]))
    # a reduced-resolution thumbnail before the image
    full = pattern((25, 30), "uint8")
    save("thumb_first_u8.tif", build([full[::4, ::4], full], subfile=[1, 0]))
    # bad files
    save("bad_1bit.tif", build([np.zeros((12, 10), np.uint8)], bits=1, width=10))
    save("bad_zero_width.tif", build([np.zeros((12, 10), np.uint8)], width=0))
    save("bad_complex.tif", build([np.zeros((12, 10), np.float32)], fmt=6))
    full = build([g], compression=8)
    save("bad_truncated.tif", full[: len(full) // 3])
