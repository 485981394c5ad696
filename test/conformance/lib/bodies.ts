/** Request bodies the conformance suites send: deterministic bytes for a seed, and their digest. */
import { createHash } from 'node:crypto';

export const MiB = 1024 * 1024;

/** `n` xorshift bytes from `seed` (cheap enough for 8 MiB uploads). */
export function bytesOf(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `size` bytes of sha256 blocks of `${seed}:${i}` (the differential suites' bodies). */
export function hashedBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let block = Buffer.alloc(0);
  for (let off = 0, i = 0; off < size; off += block.length, i++) {
    block = createHash('sha256').update(`${seed}:${i}`).digest();
    block.copy(out, off);
  }
  return out;
}

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
