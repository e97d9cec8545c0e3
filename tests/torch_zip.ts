/**
 * Builders of `torch.save` files for tests: pickle opcodes as torch writes them for a state
 * dict ({@link PickleWriter}), the zip around them ({@link torchZip}), and a zip whose entry
 * declares a zip64 size it does not hold ({@link zip64Claim}).
 */
import { deflateSync, zipSync } from "fflate";

/** Emits pickle protocol-2 opcodes, as torch.save writes them for a state dict. */
export class PickleWriter {
  private out: number[] = [0x80, 2];
  private u32(n: number) {
    this.out.push(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
  }
  op(...bytes: number[]) {
    for (const b of bytes) this.out.push(b);
    return this;
  }
  global(module: string, name: string) {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.out.push(0x58);
    this.u32(b.length);
    return this.op(...b);
  }
  int(n: number) {
    if (n < 256) return this.op(0x4b, n);
    if (n < 2 ** 31) {
      this.out.push(0x4a);
      this.u32(n);
      return this;
    }
    // LONG1 of 8 bytes
    this.op(0x8a, 8);
    for (let i = 0, v = BigInt(n); i < 8; i++, v >>= 8n) this.out.push(Number(v & 0xffn));
    return this;
  }
  ints(xs: number[]) {
    this.op(0x28);
    xs.forEach((x) => this.int(x));
    return this.op(0x74);
  }
  /** `key: _rebuild_tensor_v2(storage(type, skey, numel), offset, shape, stride, False, OrderedDict())` */
  tensor(
    key: string,
    storageType: string,
    skey: string,
    numel: number,
    shape: number[],
    stride: number[],
  ) {
    this.str(key).global("torch._utils", "_rebuild_tensor_v2").op(0x28);
    this.op(0x28).str("storage").global("torch", storageType).str(skey).str("cpu").int(numel);
    this.op(0x74, 0x51).int(0).ints(shape).ints(stride).op(0x89);
    return this.global("collections", "OrderedDict").op(0x29, 0x52, 0x74, 0x52);
  }
  /** `OrderedDict()` then MARK: the start of a state dict; end it with {@link endDict} */
  beginDict() {
    return this.global("collections", "OrderedDict").op(0x29, 0x52, 0x28);
  }
  /** SETITEMS, STOP */
  endDict() {
    return this.op(0x75, 0x2e);
  }
  bytes() {
    return new Uint8Array(this.out);
  }
}

/** A torch.save zip (archive/data.pkl, archive/version, archive/data/<key>), entries stored. */
export function torchZip(pickle: Uint8Array, storages: Record<string, Uint8Array>): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {
    "archive/data.pkl": [pickle, { level: 0 }],
    "archive/version": [new TextEncoder().encode("3\n"), { level: 0 }],
  };
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = [v, { level: 0 }];
  return zipSync(files);
}

/**
 * A zip of stored `entries` plus one Deflate entry `name` of `data` whose zip64 extra field
 * declares `claimed` bytes inflated (e.g. 2^40).
 */
export function zip64Claim(
  entries: Record<string, Uint8Array>,
  name: string,
  data: Uint8Array,
  claimed: number,
): Uint8Array {
  const enc = new TextEncoder();
  const list = [
    ...Object.entries(entries).map(([n, d]) => ({ n, d, method: 0, size: d.length })),
    { n: name, d: deflateSync(data), method: 8, size: claimed },
  ];
  const locals: Uint8Array[] = [], centrals: Uint8Array[] = [];
  let at = 0;
  for (const e of list) {
    const nameBytes = enc.encode(e.n);
    const big = e.size > 0xffffffff;
    const lh = new Uint8Array(30 + nameBytes.length + (big ? 20 : 0) + e.d.length);
    const l = new DataView(lh.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 45, true);
    l.setUint16(8, e.method, true);
    l.setUint32(18, e.d.length, true);
    l.setUint32(22, big ? 0xffffffff : e.size, true);
    l.setUint16(26, nameBytes.length, true);
    l.setUint16(28, big ? 20 : 0, true);
    lh.set(nameBytes, 30);
    if (big) {
      l.setUint16(30 + nameBytes.length, 1, true);
      l.setUint16(32 + nameBytes.length, 16, true);
      l.setBigUint64(34 + nameBytes.length, BigInt(e.size), true);
      l.setBigUint64(42 + nameBytes.length, BigInt(e.d.length), true);
    }
    lh.set(e.d, 30 + nameBytes.length + (big ? 20 : 0));
    const ch = new Uint8Array(46 + nameBytes.length + (big ? 12 : 0));
    const c = new DataView(ch.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 45, true);
    c.setUint16(6, 45, true);
    c.setUint16(10, e.method, true);
    c.setUint32(20, e.d.length, true);
    c.setUint32(24, big ? 0xffffffff : e.size, true);
    c.setUint16(28, nameBytes.length, true);
    c.setUint16(30, big ? 12 : 0, true);
    c.setUint32(42, at, true);
    ch.set(nameBytes, 46);
    if (big) {
      c.setUint16(46 + nameBytes.length, 1, true);
      c.setUint16(48 + nameBytes.length, 8, true);
      c.setBigUint64(50 + nameBytes.length, BigInt(e.size), true);
    }
    locals.push(lh), centrals.push(ch);
    at += lh.length;
  }
  const cdSize = centrals.reduce((a, x) => a + x.length, 0);
  const end = new Uint8Array(22);
  const v = new DataView(end.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, list.length, true);
  v.setUint16(10, list.length, true);
  v.setUint32(12, cdSize, true);
  v.setUint32(16, at, true);
  const parts = [...locals, ...centrals, end];
  const out = new Uint8Array(parts.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}
