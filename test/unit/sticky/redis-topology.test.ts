/** Pure views of a Redis topology: slot ranges, primaries per slot table, failovers between tables. */
import { describe, expect, it } from 'vitest';
import { CLUSTER_SLOTS, failoversBetween, primariesOf, slotOf, slotRanges } from '../../../src/sticky/index.js';

/** A slot table with primaries a/b/c (replicas ra/rb/rc) over thirds of the slots. */
function table(owner: (slot: number) => string[]): string[][] {
  return Array.from({ length: CLUSTER_SLOTS }, (_, s) => owner(s));
}
const thirds = (s: number): string[] => (s < 5461 ? ['a:1', 'ra:1'] : s < 10923 ? ['b:1', 'rb:1'] : ['c:1', 'rc:1']);

describe('redis topology views', () => {
  it('slotRanges compacts sorted slots', () => {
    expect(slotRanges([])).toBe('');
    expect(slotRanges([0, 1, 2, 5, 7, 8])).toBe('0-2,5,7-8');
  });

  it('primariesOf lists each primary with its ranges, busiest first, and uncovered slots as (none)', () => {
    expect(primariesOf(table(thirds))).toEqual([
      { node: 'b:1', serves: '5461-10922', slots: 5462 },
      { node: 'a:1', serves: '0-5460', slots: 5461 },
      { node: 'c:1', serves: '10923-16383', slots: 5461 },
    ]);
    const holes = table(thirds);
    holes[42] = undefined as unknown as string[];
    expect(primariesOf(holes).find((p) => p.node === '(none)')).toEqual({ node: '(none)', serves: '42', slots: 1 });
  });

  it('failoversBetween counts a replica taking over, once per takeover, and not a resharding', () => {
    const before = table(thirds);
    const failover = table((s) => (s < 5461 ? ['ra:1'] : thirds(s)));
    expect(failoversBetween(before, failover)).toEqual([{ from: 'a:1', to: 'ra:1' }]);
    const reshard = table((s) => (s < 1000 ? ['b:1', 'rb:1'] : thirds(s)));
    expect(failoversBetween(before, reshard)).toEqual([]);
    expect(failoversBetween([], before)).toEqual([]);
  });
});

describe('slotOf (Redis Cluster key → slot)', () => {
  // Values from the Redis cluster specification's examples and CLUSTER KEYSLOT; the hash-tag rules:
  // the first {…} that is not empty is hashed alone; `{}` means the whole key.
  it('matches Redis on plain keys and hash tags', () => {
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('bar')).toBe(5061);
    expect(slotOf('somekey')).toBe(11058);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    expect(slotOf('{user1000}.following')).toBe(slotOf('user1000'));
    expect(slotOf('foo{}{bar}')).toBe(8363); // the whole key (Python: binascii.crc_hqx(b'foo{}{bar}', 0) % 16384)
    expect(slotOf('meshgate:{abc}:pin')).toBe(slotOf('abc'));
  });
});
