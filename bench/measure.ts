/**
 * Measuring helpers shared by the benchmarks: the median run's wall and CPU time, and the
 * process's peak resident memory.
 * @module
 */
import process from "node:process";

/** Wall-clock ms and process CPU ms (all threads) of the median of `reps` runs after a warm-up. */
export async function median(run: () => unknown, reps = 3): Promise<{ wall: number; cpu: number }> {
  await run();
  const t: { wall: number; cpu: number }[] = [];
  for (let k = 0; k < reps; k++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    const c = process.cpuUsage(c0);
    t.push({ wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 });
  }
  return t.sort((a, b) => a.wall - b.wall)[reps >> 1];
}

/** Peak resident set size of this process in MiB (VmHWM from /proc/self/status). */
export function peakRssMiB(): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}
