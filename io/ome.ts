/**
 * OME-TIFF metadata: the OME-XML in the first page's ImageDescription says how the TIFF pages map
 * to the Z, C and T axes (`DimensionOrder`, `SizeZ`, `SizeC`, `SizeT`). Only the first image's
 * `Pixels` element is read; that is all a single-image reader needs.
 *
 * @example
 * ```ts
 * import { omePageAxes, parseOmeXml } from "./ome.ts";
 * const xml = '<OME><Image><Pixels DimensionOrder="XYZCT" SizeX="8" SizeY="8" SizeZ="5" ' +
 *   'SizeC="2" SizeT="1" Type="uint16"/></Image></OME>';
 * const ome = parseOmeXml(xml)!;
 * console.log(omePageAxes(ome)); // { axes: "CZ", shape: [2, 5] }
 * ```
 * @module
 */

/** The first `Pixels` element of an OME-XML document. */
export interface OmePixels {
  /** e.g. "XYZCT": X fastest, T slowest */
  dimensionOrder: string;
  sizeX: number;
  sizeY: number;
  sizeZ: number;
  sizeC: number;
  sizeT: number;
  /** samples per pixel of the first channel (RGB channels are stored as samples of one page) */
  samplesPerPixel: number;
  /** OME pixel type, e.g. "uint16" */
  type: string;
}

function attr(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}\\s*=\\s*"([^"]*)"`).exec(tag)?.[1];
}

/** Parses OME-XML; undefined when the text has no OME `Pixels` element with valid sizes. */
export function parseOmeXml(xml: string): OmePixels | undefined {
  if (!/<(\w+:)?OME[\s>]/.test(xml)) return undefined;
  const pixels = /<(?:\w+:)?Pixels\s[^>]*>/.exec(xml);
  if (!pixels) return undefined;
  const tag = pixels[0];
  const num = (name: string) => Number(attr(tag, name) ?? "1");
  const order = attr(tag, "DimensionOrder") ?? "XYZCT";
  const channel = /<(?:\w+:)?Channel\s[^>]*>/.exec(xml.slice(pixels.index));
  const spp = channel ? Number(attr(channel[0], "SamplesPerPixel") ?? "1") : 1;
  const out: OmePixels = {
    dimensionOrder: order,
    sizeX: num("SizeX"),
    sizeY: num("SizeY"),
    sizeZ: num("SizeZ"),
    sizeC: num("SizeC"),
    sizeT: num("SizeT"),
    samplesPerPixel: spp,
    type: attr(tag, "Type") ?? "",
  };
  const sizes = [out.sizeX, out.sizeY, out.sizeZ, out.sizeC, out.sizeT, spp];
  if (!/^XY[ZCT]{3}$/.test(order) || new Set(order).size !== 5) return undefined;
  if (!sizes.every((n) => Number.isInteger(n) && n >= 1)) return undefined;
  return out;
}

/**
 * Axes of the TIFF pages, slowest first, size-1 axes dropped: `DimensionOrder` "XYZCT" with
 * SizeZ 5, SizeC 2 gives "CZ" with shape [2, 5]. RGB channels stored as samples are not pages,
 * so the page C size is `SizeC / SamplesPerPixel`.
 */
export function omePageAxes(ome: OmePixels): { axes: string; shape: number[] } {
  const n: Record<string, number> = {
    Z: ome.sizeZ,
    C: Math.max(1, Math.round(ome.sizeC / ome.samplesPerPixel)),
    T: ome.sizeT,
  };
  const slowFirst = ome.dimensionOrder.slice(2).split("").reverse();
  const kept = slowFirst.filter((a) => n[a] > 1);
  return { axes: kept.join(""), shape: kept.map((a) => n[a]) };
}
