/**
 * The sticky resolver's own defaults are the config's (an operator reads docs/config.md; a library user
 * of StickyResolver gets the same values), so the two cannot drift apart again (they once said 10 and
 * 30 minutes).
 */
import { describe, expect, it } from 'vitest';
import { serviceSchema } from '../../../src/config/schema.js';
import { DEFAULT_CACHE_TTL_MS, DEFAULT_TTL_MS } from '../../../src/sticky/index.js';

describe('sticky defaults', () => {
  it('match the config schema defaults of sticky.ttl and sticky.cacheTtl', () => {
    const svc = serviceSchema.parse({ upstreams: [{ id: 'a', url: 'http://127.0.0.1:1' }], sticky: { cookie: 'mg_session' } });
    expect(svc.sticky?.ttl).toBe(DEFAULT_TTL_MS);
    expect(svc.sticky?.cacheTtl).toBe(DEFAULT_CACHE_TTL_MS);
    expect(DEFAULT_TTL_MS).toBe(30 * 60_000);
  });
});
