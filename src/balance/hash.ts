/**
 * The one 64-bit hash every hash-based placement in meshgate uses: ring-hash virtual nodes and keys,
 * Maglev permutations and keys, and the sticky module's "hash of the session key that every peer
 * computes alike" (DESIGN.md §5, `onStoreDown: hash`).
 *
 * Invariants:
 * - Output depends only on the UTF-8 bytes of the input and the seed: no process state, no platform
 *   dependence. Every peer (and every future version) must compute the same value, because ring and
 *   table positions are part of what keeps keys in place across peers and restarts. Changing this
 *   function moves every key: treat it as a wire format.
 * - Pure and allocation-free on the hot path (a module-level scratch buffer, safe because JS runs one
 *   call at a time).
 *
 * Choice: xxHash64 (Collet; spec https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), the
 * hash Envoy's ring hash uses by default (`hash_function: XX_HASH`), written with 2×32-bit integer
 * arithmetic instead of BigInt. Measured with bench/micro/balance-hash.ts (Node 20.20, shared 2-vCPU
 * machine, best of 6 rounds, CPU time of the process so other load does not count), million hashes
 * per CPU-second for 16-byte / 40-byte ASCII keys, and ring quality (10 ids × 160 "id#j" vnodes, mean
 * over 20 id sets of the largest share deviation; random placement gives ≈ 13 %):
 *
 *   candidate                    16 B    40 B   ring spread
 *   xxHash64, 2×32-bit (chosen)   7.4     1.9     13.7 %
 *   xxHash64, BigInt              0.51    0.32    13.7 %   (same values)
 *   FNV-1a-64, 2×32-bit          11.1     4.7    114 %     weak high bits when only a suffix differs
 *   FNV-1a-64, BigInt             0.54    0.31   114 %
 *   murmur3 x86_32, two seeds    16.2     8.3     13.3 %   two 32-bit hashes, not a 64-bit one
 *
 * BigInt loses 15–20× (every operation allocates). FNV-1a-64 is fast but disqualified by its spread.
 * murmur3 ×2 is 2–4× faster than xxHash64 here, but that is ≈ 0.1–0.4 µs per pick against a request
 * that costs tens of µs in the proxy; xxHash64 is a published 64-bit hash with full avalanche whose
 * reference vectors we test against (test/unit/balance/hash.test.ts), so another implementation can
 * reproduce our placements from the spec. Implementation note: results go through a Uint32Array, not
 * module-level `let`s — V8 boxes a uint32 above 2^30 held in a `let`, which cost 4× (1.8 vs 7.9 M/s).
 */

/** Seed 0, as the xxHash spec's reference vectors; a different seed derives an independent hash. */
export const DEFAULT_HASH_SEED = 0;

// xxHash64 primes (spec §"Prime constants"), split into 32-bit halves.
const P1_HI = 0x9e3779b1, P1_LO = 0x85ebca87;
const P2_HI = 0xc2b2ae3d, P2_LO = 0x27d4eb4f;
const P3_HI = 0x165667b1, P3_LO = 0x9e3779f9;
const P4_HI = 0x85ebca77, P4_LO = 0xc2b2ae63;
const P5_HI = 0x27d4eb2f, P5_LO = 0x165667c5;

const TWO32 = 4294967296;

/*
 * Results of the 64-bit helpers below, as [hi, lo]. A typed array rather than module-level `let`s:
 * V8 keeps a uint32 above 2^30 in a `let` as a heap-allocated number, which made every helper call
 * allocate (measured: 1.8 vs 10+ Mhash/s). Safe to share: JS runs one call at a time.
 */
const R = new Uint32Array(2);

/** (ah,al) × (bh,bl) mod 2^64 → R. Only integer ops: 16-bit partial products, Math.imul for the rest. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1; // each < 2^32
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const hiOfLo = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16); // floor(al × bl / 2^32)
  R[0] = hiOfLo + Math.imul(ah, bl) + Math.imul(al, bh);
  R[1] = Math.imul(al, bl);
}

/** (ah,al) + (bh,bl) mod 2^64 → R. */
function add64(ah: number, al: number, bh: number, bl: number): void {
  const lo = (al >>> 0) + (bl >>> 0);
  R[1] = lo;
  R[0] = ah + bh + (lo >= TWO32 ? 1 : 0);
}

/** rotl64((h,l), r) for 0 < r < 32 → R. */
function rotl64(h: number, l: number, r: number): void {
  R[0] = (h << r) | (l >>> (32 - r));
  R[1] = (l << r) | (h >>> (32 - r));
}

/** xxHash64 round(acc, lane): acc += lane × P2; acc = rotl(acc, 31); acc ×= P1 → R. */
function round(acch: number, accl: number, laneh: number, lanel: number): void {
  mul64(laneh, lanel, P2_HI, P2_LO);
  add64(acch, accl, R[0]!, R[1]!);
  rotl64(R[0]!, R[1]!, 31);
  mul64(R[0]!, R[1]!, P1_HI, P1_LO);
}

/** xxHash64 mergeRound(acc, val): acc ^= round(0, val); acc = acc × P1 + P4 → R. */
function mergeRound(acch: number, accl: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  mul64(acch ^ R[0]!, accl ^ R[1]!, P1_HI, P1_LO);
  add64(R[0]!, R[1]!, P4_HI, P4_LO);
}

function read32(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/** Core: xxHash64 of bytes[0, len) with a 32-bit seed → R = [hi, lo] (spec §"Algorithm description"). */
function xxh64Bytes(b: Uint8Array, len: number, seed: number): void {
  let i = 0;
  let hh: number, hl: number;
  const sl = seed >>> 0;
  if (len >= 32) {
    // Accumulators: seed + P1 + P2, seed + P2, seed, seed − P1 (= seed + 2^64 − P1).
    add64(0, sl, P1_HI, P1_LO); add64(R[0]!, R[1]!, P2_HI, P2_LO);
    let v1h = R[0]!, v1l = R[1]!;
    add64(0, sl, P2_HI, P2_LO);
    let v2h = R[0]!, v2l = R[1]!;
    let v3h = 0, v3l = sl;
    add64(0, sl, ~P1_HI, -P1_LO); // P1_LO ≠ 0, so two's complement needs no carry into hi
    let v4h = R[0]!, v4l = R[1]!;
    const limit = len - 32;
    while (i <= limit) {
      round(v1h, v1l, read32(b, i + 4), read32(b, i)); v1h = R[0]!; v1l = R[1]!;
      round(v2h, v2l, read32(b, i + 12), read32(b, i + 8)); v2h = R[0]!; v2l = R[1]!;
      round(v3h, v3l, read32(b, i + 20), read32(b, i + 16)); v3h = R[0]!; v3l = R[1]!;
      round(v4h, v4l, read32(b, i + 28), read32(b, i + 24)); v4h = R[0]!; v4l = R[1]!;
      i += 32;
    }
    rotl64(v1h, v1l, 1); hh = R[0]!; hl = R[1]!;
    rotl64(v2h, v2l, 7); add64(hh, hl, R[0]!, R[1]!); hh = R[0]!; hl = R[1]!;
    rotl64(v3h, v3l, 12); add64(hh, hl, R[0]!, R[1]!); hh = R[0]!; hl = R[1]!;
    rotl64(v4h, v4l, 18); add64(hh, hl, R[0]!, R[1]!); hh = R[0]!; hl = R[1]!;
    mergeRound(hh, hl, v1h, v1l); hh = R[0]!; hl = R[1]!;
    mergeRound(hh, hl, v2h, v2l); hh = R[0]!; hl = R[1]!;
    mergeRound(hh, hl, v3h, v3l); hh = R[0]!; hl = R[1]!;
    mergeRound(hh, hl, v4h, v4l); hh = R[0]!; hl = R[1]!;
  } else {
    add64(0, sl, P5_HI, P5_LO); hh = R[0]!; hl = R[1]!;
  }
  add64(hh, hl, Math.floor(len / TWO32), len); hh = R[0]!; hl = R[1]!;
  while (i + 8 <= len) {
    round(0, 0, read32(b, i + 4), read32(b, i));
    rotl64(hh ^ R[0]!, hl ^ R[1]!, 27); mul64(R[0]!, R[1]!, P1_HI, P1_LO); add64(R[0]!, R[1]!, P4_HI, P4_LO);
    hh = R[0]!; hl = R[1]!;
    i += 8;
  }
  if (i + 4 <= len) {
    mul64(0, read32(b, i), P1_HI, P1_LO);
    rotl64(hh ^ R[0]!, hl ^ R[1]!, 23); mul64(R[0]!, R[1]!, P2_HI, P2_LO); add64(R[0]!, R[1]!, P3_HI, P3_LO);
    hh = R[0]!; hl = R[1]!;
    i += 4;
  }
  while (i < len) {
    mul64(0, b[i]!, P5_HI, P5_LO);
    rotl64(hh ^ R[0]!, hl ^ R[1]!, 11); mul64(R[0]!, R[1]!, P1_HI, P1_LO);
    hh = R[0]!; hl = R[1]!;
    i++;
  }
  // Avalanche: h ^= h >> 33; h ×= P2; h ^= h >> 29; h ×= P3; h ^= h >> 32.
  hl ^= hh >>> 1;
  mul64(hh, hl, P2_HI, P2_LO); hh = R[0]!; hl = R[1]!;
  hl ^= (hl >>> 29) | (hh << 3);
  hh ^= hh >>> 29;
  mul64(hh, hl, P3_HI, P3_LO); hh = R[0]!; hl = R[1]!;
  R[1] = hl ^ hh;
}

// ---------------------------------------------------------------------------------------------
// UTF-8 encoding into a reusable scratch buffer (no allocation for keys up to its size).

let scratch = new Uint8Array(256);
const encoder = new TextEncoder();

/** UTF-8 bytes of `s` in `scratch[0, n)`; returns n. ASCII fast path, TextEncoder otherwise. */
function encode(s: string): number {
  const n = s.length;
  if (n <= scratch.length) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      scratch[i] = c;
    }
    if (i === n) return n;
  }
  // Non-ASCII (or long): at most 3 bytes per UTF-16 code unit.
  if (scratch.length < n * 3) scratch = new Uint8Array(n * 3);
  return encoder.encodeInto(s, scratch).written;
}

/** xxHash64(UTF-8(s), seed) as two unsigned 32-bit halves written to `out` ([hi, lo]). */
export function hash64Into(s: string, out: Uint32Array, seed: number = DEFAULT_HASH_SEED): void {
  const len = encode(s);
  xxh64Bytes(scratch, len, seed);
  out[0] = R[0]!; // the Uint32Array stores the unsigned value of the same bits
  out[1] = R[1]!;
}

/** High 32 bits of xxHash64(UTF-8(s), seed): the ring position of a key or virtual node. */
export function hash32High(s: string, seed: number = DEFAULT_HASH_SEED): number {
  xxh64Bytes(scratch, encode(s), seed);
  return R[0]! >>> 0;
}

const pair = new Uint32Array(2);

/**
 * xxHash64 of the UTF-8 bytes of `s` (seed 0 unless given) as an unsigned 64-bit BigInt. Equals
 * XXH64 from the reference implementation, so any language can reproduce it.
 */
export function hash64(s: string, seed: number = DEFAULT_HASH_SEED): bigint {
  hash64Into(s, pair, seed);
  return (BigInt(pair[0]!) << 32n) | BigInt(pair[1]!);
}

/** The same hash over raw bytes (for callers that already hold bytes). */
export function hash64Bytes(bytes: Uint8Array, seed: number = DEFAULT_HASH_SEED): bigint {
  xxh64Bytes(bytes, bytes.length, seed);
  return (BigInt(R[0]! >>> 0) << 32n) | BigInt(R[1]! >>> 0);
}

