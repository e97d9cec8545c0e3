/**
 * The train / validation split of the `nuclei` model: of the DSB2018 training pool's images in
 * name order, every 10th (index 0, 10, 20, ...) is validation, the rest training. Makes
 * `<out>/train` and `<out>/val` with links to the images and their `_masks.tif` labels.
 *
 * Usage: deno run -A pretrained/nuclei/split.ts ../shared/data/dsb2018-train runs/nuclei/data
 * @module
 */
import { basename, join, resolve } from "node:path";

/** The pool's image names (without extension) that have labels, in name order. */
export async function poolNames(pool: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(pool)) {
    if (e.name.endsWith("_masks.tif")) names.push(e.name.slice(0, -"_masks.tif".length));
  }
  return names.sort();
}

/** Whether the i-th name of the pool is a validation image. */
export const isValidation = (i: number): boolean => i % 10 === 0;

if (import.meta.main) {
  const [pool, out] = Deno.args;
  if (!pool || !out) {
    console.error("usage: split.ts <pool folder> <output folder>");
    Deno.exit(2);
  }
  const names = await poolNames(pool);
  const counts = { train: 0, val: 0 };
  for (const part of ["train", "val"] as const) {
    await Deno.mkdir(join(out, part), { recursive: true });
  }
  for (const [i, name] of names.entries()) {
    const part = isValidation(i) ? "val" : "train";
    counts[part]++;
    for (const f of [`${name}.png`, `${name}_masks.tif`]) {
      const link = join(out, part, basename(f));
      await Deno.remove(link).catch(() => {});
      await Deno.symlink(resolve(pool, f), link);
    }
  }
  console.log(`${counts.train} training and ${counts.val} validation images in ${out}`);
}
