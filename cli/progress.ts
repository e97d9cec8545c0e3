/**
 * Progress reporting for the CLI on stderr. On a terminal one line is redrawn in place: file
 * counter, stage, a bar over the network tiles, tiles per second and the time left for the
 * current image. Anywhere else (a pipe, a log file, a cluster job) plain lines are written, one
 * when a file starts and one when it ends, so logs stay readable.
 *
 * @example
 * ```ts
 * import { createProgress } from "./progress.ts";
 * const progress = createProgress({ total: 1, tty: false });
 * progress.start("a.png");
 * progress.update({ stage: "network", tilesDone: 4, tilesTotal: 8 });
 * progress.done("27 masks");
 * ```
 * @module
 */
import type { Progress } from "../core/types.ts";

/** Reports the progress of a batch of files. */
export interface ProgressReporter {
  /** a new file begins */
  start(name: string): void;
  /** a progress event of the current file */
  update(p: Progress): void;
  /** the current file finished; `summary` is appended to its line */
  done(summary: string): void;
  /** the current file failed */
  fail(message: string): void;
  /** a message unrelated to one file (e.g. model loading), kept in the log */
  note(message: string): void;
  /** a passing status line (e.g. download bytes): shown on a terminal only, then replaced */
  status(text: string): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** number of files in the batch */
  total: number;
  /** redraw one line in place (default: whether stderr is a terminal) */
  tty?: boolean;
  /** where text goes (default: stderr) */
  write?: (text: string) => void;
  /** terminal width (default: the terminal's, else 100) */
  columns?: number;
}

const encoder = new TextEncoder();
const writeStderr = (text: string) => {
  Deno.stderr.writeSync(encoder.encode(text));
};

/** Width of the terminal on stderr; 100 when unknown (pipes, or 0 reported by a pseudo-terminal). */
function terminalColumns(): number {
  try {
    const { columns } = Deno.consoleSize();
    return columns >= 20 ? columns : 100;
  } catch {
    return 100;
  }
}

/** `1.2 s`, `3 min 04 s`: durations as people read them. */
function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, "0")} s`;
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return "█".repeat(filled) + "░".repeat(width - filled);
}

/**
 * Creates the reporter: a live line on a terminal, plain lines elsewhere.
 *
 * @example
 * ```ts
 * import { createProgress } from "./progress.ts";
 * const lines: string[] = [];
 * const p = createProgress({ total: 1, tty: false, write: (t) => lines.push(t) });
 * p.start("a.png");
 * p.done("3 masks"); // lines: ["[1/1] a.png: started\n", "[1/1] a.png: 3 masks (0.0 s)\n"]
 * ```
 */
export function createProgress(options: ProgressOptions): ProgressReporter {
  const tty = options.tty ?? Deno.stderr.isTerminal();
  const write = options.write ?? writeStderr;
  const columns = options.columns ?? terminalColumns();
  let index = 0;
  let name = "";
  let fileStart = 0;
  let networkStart = 0;
  let lastDraw = 0;
  let live = false;

  const prefix = () => `[${index}/${options.total}] ${name}`;
  const clear = () => {
    if (live) write("\r\x1b[K");
    live = false;
  };
  let blocksStart = 0, lastTenth = -1;
  /** blocks done, a bar over all blocks (tiles of the current one included), blocks/s, ETA */
  const blockLine = (p: Progress, now: number) => {
    const fraction = p.fraction ?? (p.blocksDone ?? 0) / p.blocksTotal!;
    const seconds = (now - blocksStart) / 1000;
    const rate = seconds > 0 ? (fraction * p.blocksTotal!) / seconds : 0;
    const eta = fraction > 0 ? formatDuration((seconds / fraction) * (1 - fraction) * 1000) : "?";
    const tiles = p.tilesTotal ? `  tiles ${p.tilesDone ?? 0}/${p.tilesTotal}` : "";
    const stats = ` blocks ${p.blocksDone}/${p.blocksTotal}${tiles}  ${rate.toFixed(3)} blocks/s` +
      `  ETA ${eta}`;
    return { fraction, stats };
  };
  const draw = (p: Progress) => {
    const now = performance.now();
    if (p.blocksTotal) {
      if (now - lastDraw < 100 && p.tilesDone !== p.tilesTotal) return;
      lastDraw = now;
      const { fraction, stats } = blockLine(p, now);
      const head = `${prefix()}  ${p.stage}`;
      const width = Math.max(10, Math.min(30, columns - head.length - stats.length - 3));
      write(`\r\x1b[K${(`${head} ${bar(fraction, width)}${stats}`).slice(0, columns - 1)}`);
      live = true;
      return;
    }
    if (p.stage === "network" && networkStart === 0) networkStart = now;
    if (now - lastDraw < 100 && p.tilesDone !== p.tilesTotal) return;
    lastDraw = now;
    let line = `${prefix()}  ${p.stage}`;
    if (p.stage === "network" && p.tilesTotal) {
      const done = p.tilesDone ?? 0;
      const seconds = (now - networkStart) / 1000;
      const rate = seconds > 0 ? done / seconds : 0;
      const eta = rate > 0 ? formatDuration(((p.tilesTotal - done) / rate) * 1000) : "?";
      const stats = ` ${done}/${p.tilesTotal} tiles  ${rate.toFixed(1)} tiles/s  ETA ${eta}`;
      const width = Math.max(10, Math.min(30, columns - line.length - stats.length - 3));
      line += ` ${bar(done / p.tilesTotal, width)}${stats}`;
    }
    write(`\r\x1b[K${line.slice(0, columns - 1)}`);
    live = true;
  };

  return {
    start(fileName) {
      clear();
      index++;
      name = fileName;
      fileStart = performance.now();
      networkStart = 0;
      blocksStart = 0;
      lastTenth = -1;
      lastDraw = 0;
      if (!tty) write(`${prefix()}: started\n`);
    },
    update(p) {
      if (p.blocksTotal && blocksStart === 0) blocksStart = performance.now();
      if (tty) draw(p);
      else if (p.blocksTotal && p.blocksDone !== undefined && !p.tilesTotal) {
        // in a log: a line at every tenth of the blocks
        const { stats } = blockLine(p, performance.now());
        const tenth = Math.floor((10 * p.blocksDone) / p.blocksTotal);
        if (tenth !== lastTenth) {
          lastTenth = tenth;
          write(`${prefix()}:${stats}\n`);
        }
      }
    },
    done(summary) {
      clear();
      write(`${prefix()}: ${summary} (${formatDuration(performance.now() - fileStart)})\n`);
    },
    fail(message) {
      clear();
      write(`${prefix()}: FAILED: ${message}\n`);
    },
    note(message) {
      clear();
      write(`${message}\n`);
    },
    status(text) {
      if (!tty) return;
      write(`\r\x1b[K${text.slice(0, columns - 1)}`);
      live = true;
    },
  };
}
