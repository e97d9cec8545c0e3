/**
 * The whole-image steps around the network, on synthetic uint16 2-channel images of 512^2 and
 * 2048^2 pixels: convert, normalise (1st/99th percentiles), resize for diameter 60 and back,
 * cutting and recombining the tiles (through an identity network, so the network itself costs
 * nothing). The last column is the 2048^2 / 512^2 time ratio: 16 means linear in pixels.
 * Median of 3 runs after one warm-up.
 * @module
 */
import type { NdArray } from "../core/ndarray.ts";
import type { NetRunner } from "../core/types.ts";
import { convertImage } from "../pipeline/channels.ts";
import { runNetwork } from "../pipeline/flows.ts";
import { normalizeImage } from "../pipeline/normalize.ts";
import { resizeImage } from "../pipeline/resize.ts";
import { median } from "./measure.ts";

const identity: NetRunner = {
  name: "identity",
  device: "cpu",
  bsize: 256,
  run: (tiles) => Promise.resolve(tiles),
  dispose: () => Promise.resolve(),
};

function image(side: number): NdArray<Uint16Array> {
  const data = new Uint16Array(side * side * 2);
  let s = 1;
  for (let i = 0; i < data.length; i++) {
    s = (s * 48271) % 2147483647;
    data[i] = (s & 1023) + ((i >> 7) & 255);
  }
  return { data, shape: [side, side, 2] };
}

/** Prints stage | ms at 512^2 | ms at 2048^2 | ratio. */
export default async function (): Promise<void> {
  const sides = [512, 2048];
  const rows = new Map<string, number[]>();
  for (const side of sides) {
    const img = image(side);
    const conv = convertImage(img, { channelAxis: 2 });
    const norm = normalizeImage(conv);
    const half = Math.trunc(side / 2);
    const small = resizeImage(norm, half, half);
    const steps: [string, () => unknown][] = [
      ["convert (HWC 2ch -> 3ch)", () => convertImage(img, { channelAxis: 2 })],
      ["normalize (percentiles)", () => normalizeImage(conv)],
      ["resize down (diameter 60)", () => resizeImage(norm, half, half)],
      ["resize up (back to image)", () => resizeImage(small, side, side)],
      ["tiles: cut + taper average", () => runNetwork(norm, identity, { batchSize: 8 })],
    ];
    for (const [name, run] of steps) {
      rows.set(name, [...(rows.get(name) ?? []), (await median(run)).wall]);
    }
  }
  console.log("| step | 512^2 ms | 2048^2 ms | 2048^2 / 512^2 |");
  console.log("|---|---:|---:|---:|");
  for (const [name, [a, b]] of rows) {
    console.log(`| ${name} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(1)} |`);
  }
}
