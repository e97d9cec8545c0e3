"""Reference outlines made with OpenCV the way cellpose v4's utils.outlines_list does, for
io/outlines.ts tests. Run with a python that has cv2 and numpy (Debian's python3-opencv):
/usr/bin/python3 make_outlines.py. Writes <name>_cp_outlines.txt (cellpose's text format) and,
for the synthetic masks, synthetic_masks.npy. The dsb2018 masks are read from ../../../../shared.
"""
import cv2
import numpy as np


def outlines_list(masks):
    """cellpose.utils.outlines_list_single"""
    outpix = []
    for n in np.unique(masks)[1:]:
        mn = masks == n
        if mn.sum() > 0:
            contours = cv2.findContours(mn.astype(np.uint8), mode=cv2.RETR_EXTERNAL,
                                        method=cv2.CHAIN_APPROX_NONE)
            contours = contours[-2]
            cmax = np.argmax([c.shape[0] for c in contours])
            pix = contours[cmax].astype(int).squeeze()
            if len(pix) > 4:
                outpix.append(pix)
            else:
                outpix.append(np.zeros((0, 2)))
    return outpix


def outlines_to_text(path, outlines):
    """cellpose.io.outlines_to_text"""
    with open(path, "w") as f:
        for o in outlines:
            f.write(",".join(map(str, list(o.flatten()))))
            f.write("\n")


def synthetic():
    m = np.zeros((24, 30), np.uint16)
    m[1:4, 1:4] = 1                       # square
    m[0, 10:20] = 2                       # one-pixel line on the top edge
    m[5:12, 2:9] = 3
    m[7:9, 4:6] = 0                       # square with a hole
    m[5:9, 12:14] = 4
    m[10:16, 15:17] = 4                   # two components, the second longer
    m[14, 2] = 5                          # single pixel (empty outline)
    m[14:16, 5:7] = 6                     # 2x2 (4 points: empty outline)
    yy, xx = np.mgrid[:24, :30]
    m[(yy - 18) ** 2 + (xx - 23) ** 2 <= 20] = 7   # disc touching nothing
    m[17:24, 0:6] = 8                     # touches left and bottom edges
    m[19:21, 7:12] = 9
    m[21, 12:14] = 9                      # diagonal neck
    m[20:23, 14] = 9
    m[3:7, 27:30] = 10                    # touches the right edge
    m[5, 26] = 10
    return m


if __name__ == "__main__":
    m = synthetic()
    np.save("synthetic_masks.npy", m)
    outlines_to_text("synthetic_cp_outlines.txt", outlines_list(m))
    for name in ["00071198d059", "2cfa857e63be"]:
        masks = cv2.imread(f"../../../../shared/data/dsb2018/{name}_masks.tif", -1)
        outlines_to_text(f"{name}_cp_outlines.txt", outlines_list(masks))
