/**
 * The replicated membership state machine: commands, exactly-once retries, snapshot round trips.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeProposal,
  encodeProposal,
  MAX_CLIENT_SESSIONS,
  MembershipStateMachine,
  type MembershipCommand,
} from '../../../src/cluster/membership.js';

const put = (id: string, extra: Partial<Extract<MembershipCommand, { op: 'put-upstream' }>> = {}): MembershipCommand => ({
  op: 'put-upstream',
  service: 'api',
  id,
  url: `http://127.0.0.1:90${id.length}`,
  ...extra,
});
const del = (id: string, extra: Partial<Extract<MembershipCommand, { op: 'delete-upstream' }>> = {}): MembershipCommand => ({ op: 'delete-upstream', service: 'api', id, ...extra });

function dump(m: MembershipStateMachine): unknown {
  return [...m.view()].map(([s, ups]) => [s, [...ups]]);
}

describe('MembershipStateMachine', () => {
  it('registers, updates and deregisters upstreams with defaults kept across updates', () => {
    const m = new MembershipStateMachine();
    expect(m.apply(1, put('a', { weight: 3 }))).toMatchObject({ ok: true, created: true, change: { change: 'put', value: { weight: 3, state: 'active' } } });
    // Update changes only what the command says: weight stays 3.
    expect(m.apply(2, put('a', { state: 'draining', url: 'http://10.0.0.1:80' }))).toMatchObject({ ok: true, created: false });
    expect(m.get('api', 'a')).toEqual({ url: 'http://10.0.0.1:80', weight: 3, state: 'draining' });
    expect(m.apply(3, del('a'))).toMatchObject({ ok: true, change: { service: 'api', upstream: 'a', change: 'delete' } });
    expect(m.view().has('api')).toBe(false);
    expect(m.apply(4, del('a'))).toMatchObject({ ok: false, code: 'MG_ERR_MEMBERSHIP_NOT_FOUND' });
    expect(m.appliedIndex).toBe(4);
  });

  it('answers malformed commands with a deterministic error instead of throwing', () => {
    const m = new MembershipStateMachine();
    const bad: unknown[] = [
      undefined,
      'x',
      { op: 'nope', service: 'a', id: 'b' },
      { op: 'put-upstream', service: '', id: 'b', url: 'http://x' },
      { op: 'put-upstream', service: 'a', id: 'b', url: 'ftp://x' },
      { op: 'put-upstream', service: 'a', id: 'b', url: 'not a url' },
      { op: 'put-upstream', service: 'a', id: 'b', url: 'http://x', weight: -1 },
      { op: 'put-upstream', service: 'a', id: 'b', url: 'http://x', state: 'gone' },
      { op: 'delete-upstream', service: 'a', id: 'b', clientId: 'c' },
    ];
    bad.forEach((c, i) => expect(m.apply(i + 1, c)).toMatchObject({ ok: false, code: 'MG_ERR_MEMBERSHIP_INVALID' }));
    expect(m.view().size).toBe(0);
  });

  it('applies a retried (clientId, seq) once and returns the first result again', () => {
    const m = new MembershipStateMachine();
    expect(m.apply(1, put('a', { clientId: 'c1', seq: 1 }))).toMatchObject({ ok: true, created: true });
    expect(m.apply(2, del('a', { clientId: 'c1', seq: 2 }))).toMatchObject({ ok: true });
    // The delete is retried after a timeout: it must not turn into "not found".
    expect(m.apply(3, del('a', { clientId: 'c1', seq: 2 }))).toMatchObject({ ok: true, duplicate: true, change: { change: 'delete' } });
    // A stale retry of the put must not resurrect the upstream.
    expect(m.apply(4, put('a', { clientId: 'c1', seq: 1 }))).toMatchObject({ ok: false, code: 'MG_ERR_MEMBERSHIP_STALE_SEQ' });
    expect(m.get('api', 'a')).toBeUndefined();
  });

  it('round-trips state and the de-duplication table through a snapshot', () => {
    const m = new MembershipStateMachine();
    m.apply(1, put('a', { clientId: 'c1', seq: 7, weight: 2 }));
    m.apply(2, put('b', { state: 'disabled' }));
    m.apply(3, { ...put('x'), service: 'web' });
    const r = new MembershipStateMachine();
    r.restore(m.snapshot());
    expect(dump(r)).toEqual(dump(m));
    expect(r.appliedIndex).toBe(3);
    expect(r.apply(4, put('a', { clientId: 'c1', seq: 7, weight: 99 }))).toMatchObject({ duplicate: true });
    expect(r.get('api', 'a')?.weight).toBe(2);
  });

  it('bounds the client table by evicting the session applied longest ago', () => {
    const m = new MembershipStateMachine();
    let i = 0;
    for (let c = 0; c <= MAX_CLIENT_SESSIONS; c++) m.apply(++i, put('a', { clientId: `c${c}`, seq: 1 }));
    // c0 was evicted: its retry applies again (not reported as a duplicate); c1 is still remembered.
    expect(m.apply(++i, put('a', { clientId: 'c0', seq: 1 })).duplicate).toBeUndefined();
    expect(m.apply(++i, put('a', { clientId: 'c2', seq: 1 })).duplicate).toBe(true);
  });

  it('carries the proposal id next to the command in entry data', () => {
    const cmd = put('a');
    expect(decodeProposal(encodeProposal('gw-1/5', cmd))).toEqual({ proposalId: 'gw-1/5', command: cmd });
    expect(decodeProposal(new TextEncoder().encode('{oops'))).toEqual({ proposalId: undefined, command: undefined });
  });

  it('property: delivering every command twice (retries) gives the same state and results as once', () => {
    const cmdArb = fc.oneof(
      fc.record({
        op: fc.constant('put-upstream' as const),
        service: fc.constantFrom('api', 'web'),
        id: fc.constantFrom('u1', 'u2', 'u3'),
        url: fc.constantFrom('http://a:1', 'http://b:2'),
        weight: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
        state: fc.option(fc.constantFrom('active' as const, 'draining' as const, 'disabled' as const), { nil: undefined }),
      }),
      fc.record({ op: fc.constant('delete-upstream' as const), service: fc.constantFrom('api', 'web'), id: fc.constantFrom('u1', 'u2', 'u3') }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(cmdArb, fc.constantFrom('c1', 'c2', 'c3'), fc.boolean()), { maxLength: 40 }), fc.integer({ min: 0, max: 40 }), (ops, snapAt) => {
        const seqs = new Map<string, number>();
        const cmds: MembershipCommand[] = ops.map(([c, client]) => {
          const seq = (seqs.get(client) ?? 0) + 1;
          seqs.set(client, seq);
          return { ...c, clientId: client, seq } as MembershipCommand;
        });
        const once = new MembershipStateMachine();
        const onceResults = cmds.map((c, i) => once.apply(i + 1, c));

        // Each command is applied, then (sometimes immediately, sometimes after later ones from other
        // clients) its retry is applied too; halfway, the state machine is replaced by a snapshot copy.
        let twice = new MembershipStateMachine();
        let index = 0;
        const twiceResults: unknown[] = [];
        cmds.forEach((c, i) => {
          twiceResults.push(twice.apply(++index, c));
          if (index >= snapAt && index < snapAt + 2) {
            const copy = new MembershipStateMachine();
            copy.restore(twice.snapshot());
            twice = copy;
          }
          if (ops[i]![2]) {
            const again = twice.apply(++index, c);
            expect(again.duplicate).toBe(true);
            expect({ ...again, duplicate: undefined }).toEqual({ ...onceResults[i]!, duplicate: undefined });
          }
        });
        expect(dump(twice)).toEqual(dump(once));
        expect(twiceResults).toEqual(onceResults);
      }),
      { numRuns: 300 },
    );
  });
});
