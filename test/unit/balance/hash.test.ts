/**
 * hash64 is the hash every peer must compute alike (ring points, Maglev permutations, keys, the sticky
 * module's fallback): it must equal the reference XXH64. Vectors from the xxHash reference / python-
 * xxhash README, chosen to cover every code path (empty, < 4, 4–7, 8–31 with tails, ≥ 32 bytes, seed).
 */
import { describe, expect, it } from 'vitest';
import { hash64, hash64Bytes } from '../../../src/balance/index.js';

describe('hash64 = XXH64', () => {
  it.each([
    ['', 0, 0xef46db3751d8e999n],
    ['a', 0, 0xd24ec4f1a98c6e5bn],
    ['abc', 0, 0x44bc2cf5ad770999n],
    ['xxhash', 0, 0x32dd38952c4bc720n],
    ['xxhash', 20141025, 0xb559b98d844e0635n],
    ['I want an unsigned 64-bit seed!', 0, 0xd4cb0a70a2b8c7c1n],
    ['I want an unsigned 64-bit seed!', 1, 0xce5087f12470d961n],
    ['Nobody inspects the spammish repetition', 0, 0xfbcea83c8a378bf1n],
  ])('%j seed %d', (input, seed, expected) => {
    expect(hash64(input, seed)).toBe(expected);
  });

  it('hashes the UTF-8 bytes of the string (non-ASCII and long keys agree with the byte form)', () => {
    for (const s of ['héllo wörld ☃', '🙂 emoji key', 'x'.repeat(1000), 'ü'.repeat(300)]) {
      expect(hash64(s)).toBe(hash64Bytes(new TextEncoder().encode(s)));
    }
  });

  it('is a plain function of its input (no state carried between calls)', () => {
    const first = hash64('session-123');
    hash64('x'.repeat(5000));
    hash64('ü');
    expect(hash64('session-123')).toBe(first);
  });
});
