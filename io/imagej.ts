/**
 * ImageJ hyperstack metadata: the `ImageJ=...` ImageDescription that ImageJ/Fiji writes in the
 * first page of a TIFF stack, read and written. ImageJ stores pages in `czt` order (channel
 * fastest), so a stack's leading axes are `T`, `Z`, `C` (each kept only when larger than 1).
 *
 * @example
 * ```ts
 * import { imagejDescription, parseImagejDescription } from "./imagej.ts";
 * const text = imagejDescription({ channels: 2, slices: 5 });
 * console.log(parseImagejDescription(text)); // { images: 10, channels: 2, slices: 5, frames: 1 }
 * ```
 * @module
 */

/** Hyperstack sizes from an ImageJ description. */
export interface ImagejSizes {
  images: number;
  channels: number;
  slices: number;
  frames: number;
}

/** Parses an `ImageJ=` description; undefined when the text is not one. */
export function parseImagejDescription(text: string): ImagejSizes | undefined {
  if (!text.startsWith("ImageJ=")) return undefined;
  const get = (key: string): number | undefined => {
    const m = new RegExp(`^${key}=(\\d+)\\s*$`, "m").exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const channels = get("channels") ?? 1;
  const frames = get("frames") ?? 1;
  // a plain stack has images= only: its pages are slices
  const slices = get("slices") ?? ((get("images") ?? 1) / channels / frames);
  const images = get("images") ?? channels * slices * frames;
  if (![channels, slices, frames].every((n) => Number.isInteger(n) && n >= 1)) return undefined;
  return { images, channels, slices, frames };
}

/**
 * Builds the description ImageJ writes for a hyperstack of the given sizes (1 when left out),
 * e.g. `ImageJ=1.53t\nimages=10\nchannels=2\nslices=5\nhyperstack=true\nmode=grayscale\n...`.
 */
export function imagejDescription(
  sizes: { channels?: number; slices?: number; frames?: number },
): string {
  const c = sizes.channels ?? 1, z = sizes.slices ?? 1, t = sizes.frames ?? 1;
  let text = `ImageJ=1.53t\nimages=${c * z * t}\n`;
  if (c > 1) text += `channels=${c}\n`;
  if (z > 1) text += `slices=${z}\n`;
  if (t > 1) text += `frames=${t}\n`;
  if ([c, z, t].filter((n) => n > 1).length > 1) text += "hyperstack=true\n";
  if (c > 1) text += "mode=grayscale\n";
  return text + "loop=false\n";
}

/** Axes of the pages of an ImageJ stack, slowest first, sizes-1 axes dropped: e.g. "ZC". */
export function imagejPageAxes(s: ImagejSizes): { axes: string; shape: number[] } {
  const all: [string, number][] = [["T", s.frames], ["Z", s.slices], ["C", s.channels]];
  const kept = all.filter(([, n]) => n > 1);
  return { axes: kept.map(([a]) => a).join(""), shape: kept.map(([, n]) => n) };
}
