"""Makes the resize reference files: cv2.resize(INTER_LINEAR) on float32 (python3-opencv 4.6).

Run with `python3 make_reference.py` in this folder; writes case<i>-in.npy / case<i>-out.npy and
cases.json ([h, w, c, out_h, out_w] per case, c = 0 for a 2-D image).
"""
import json

import cv2
import numpy as np

CASES = [
    (7, 5, 0, 13, 11),  # upscale, odd sizes
    (20, 30, 2, 10, 15),  # exact halving: OpenCV switches to INTER_AREA
    (33, 17, 3, 5, 40),  # shrink Y a lot, stretch X
    (1, 9, 0, 4, 3),  # a single row
    (30, 41, 3, 15, 20),  # shrink by ~2 but not exactly (like diameter 60)
    (15, 20, 3, 30, 41),  # and back
    (6, 6, 0, 6, 6),  # same size: a copy
]

rng = np.random.default_rng(7)
for i, (h, w, c, oh, ow) in enumerate(CASES):
    a = (rng.standard_normal((h, w, c) if c else (h, w)) * 100).astype(np.float32)
    np.save(f"case{i}-in.npy", a)
    np.save(f"case{i}-out.npy", cv2.resize(a, (ow, oh), interpolation=cv2.INTER_LINEAR))
json.dump([list(c) for c in CASES], open("cases.json", "w"))
