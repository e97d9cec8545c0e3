/**
 * The event loop's turns under loops that move bytes (server/loop_share.ts): twelve loops moving
 * large bodies (six uploads, each relayed and read) share one slice per turn, in order, so a
 * turn holds a bounded amount of their work whatever their number; a loop moving a small body
 * is not queued behind them. Work is counted in chunks of at least 0.5 ms each, so a machine
 * slower or busier than expected only lowers the counts the bounds are on.
 */
import { assert } from "./assert.ts";
import { BULK_BYTES, LoopTurns, YIELD_MS } from "../server/loop_share.ts";

const CHUNK_MS = 0.5;
/** One chunk's work: at least CHUNK_MS of the thread's time. */
function chunk() {
  const t = performance.now();
  while (performance.now() - t < CHUNK_MS) { /* busy */ }
}

Deno.test("loop share: twelve bulk loops together hold a turn for one slice, each in turn", async () => {
  const loops = 12;
  const done = new Array(loops).fill(0);
  let stop = false;
  // a timer turn counts the chunks done since the last: the work that held the loop
  const perTurn: number[] = [];
  let turns = 0, counted = 0;
  const ticker = (async () => {
    while (!stop) {
      await new Promise((r) => setTimeout(r, 0));
      const total = done.reduce((a, b) => a + b, 0);
      perTurn.push(total - counted);
      counted = total;
      if (++turns >= 3 * loops * 4) stop = true;
    }
  })();
  await Promise.all(Array.from({ length: loops }, async (_, k) => {
    const share = new LoopTurns();
    while (!stop) {
      chunk();
      done[k]++;
      const wait = share.due(BULK_BYTES + done[k]);
      if (wait) await wait;
    }
  }));
  await ticker;
  // one slice of YIELD_MS per turn (two where the ticker's turn and the slice's end interleave):
  // loops taking their own slice each would hold a turn for loops * YIELD_MS / CHUNK_MS = 96
  const slice = Math.ceil(YIELD_MS / CHUNK_MS) + 1;
  const most = Math.max(...perTurn);
  assert(most <= 2 * slice + 2, `up to ${most} chunks in one turn (bound ${2 * slice + 2})`);
  // in order: over 48 turns every loop had slices
  assert(done.every((n) => n >= slice), `chunks per loop: ${done.join(" ")}`);
});

Deno.test("loop share: a small body is not queued behind large ones", async () => {
  let stop = false;
  const bulk = Array.from({ length: 12 }, async () => {
    const share = new LoopTurns();
    while (!stop) {
      chunk();
      const wait = share.due(BULK_BYTES);
      if (wait) await wait;
    }
  });
  await new Promise((r) => setTimeout(r, 50)); // the bulk loops are queued by now
  let turns = 0;
  const ticker = (async () => {
    while (!stop) {
      await new Promise((r) => setTimeout(r, 0));
      turns++;
    }
  })();
  // 24 chunks of a small body: its own slices, a few turns; queued behind the twelve it would
  // wait 12 turns for each of its 3 slices
  const share = new LoopTurns();
  for (let i = 0; i < 24; i++) {
    chunk();
    const wait = share.due(16 * 1024);
    if (wait) await wait;
  }
  const took = turns;
  stop = true;
  await Promise.all([...bulk, ticker]);
  assert(took <= 12, `the small body took ${took} turns`);
});
