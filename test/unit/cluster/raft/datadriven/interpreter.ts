/**
 * A scripted Raft network for golden-output scenario files (raft.md R-B2, the style of etcd-io/raft's
 * datadriven testdata; the command set is ours, the scenarios follow etcd's names). Each command acts
 * on real RawNodes with MemoryStorage and prints what happened: the Readies each node handled (hard
 * state, appended entries, messages sent, entries applied) and the messages each node received. Nothing
 * is delivered unless a command says so, so a scenario controls every interleaving.
 *
 * Commands (arguments are `key=value`, lists `(1,2,3)`):
 *   add-nodes voters=(1,2,3) [learners=(4)] [ids=(4)] [prevote=true] [checkquorum=true] [max-inflight=N]
 *                               nodes for `ids` (default voters+learners) with that initial configuration
 *   campaign <id> | propose <id> <data> | propose-conf-change <id> add-voter|add-learner|remove=<n>
 *   transfer-leadership from=<id> to=<id> | read-index <id> <ctx> | report-unreachable <leader> <peer>
 *   tick-heartbeat <id> | tick-election <id>   (2×electionTick ticks: past any randomized timeout)
 *   process-ready <id>... | deliver-msgs [drop=true] <id>... | stabilize [<id>...]
 *   isolate <id> | recover | compact <id> <index>   (snapshot at index, then drop the log before it)
 *   raft-state | raft-log <id> | status <id>
 */
import { createSeededRandom } from '../../../../../src/lib/rng.js';
import { MemoryStorage } from '../../../../../src/cluster/raft/memory-storage.js';
import { decodeConfChange } from '../../../../../src/cluster/raft/raft.js';
import { RawNode } from '../../../../../src/cluster/raft/raw-node.js';
import type { ConfChange, ConfState, Entry, Message, NodeId } from '../../../../../src/cluster/raft/types.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const ELECTION = 10;
const HEARTBEAT = 1;

interface Node {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  confState: ConfState;
  inbox: Message[];
}

export interface Command {
  name: string;
  positional: string[];
  args: Map<string, string>;
}

/** Parses `name a b key=value key=(1,2)`. */
export function parseCommand(line: string): Command {
  const tokens = line.trim().match(/\S+=\([^)]*\)|\S+/g) ?? [];
  const [name = '', ...rest] = tokens;
  const positional: string[] = [];
  const args = new Map<string, string>();
  for (const t of rest) {
    const eq = t.indexOf('=');
    if (eq > 0) args.set(t.slice(0, eq), t.slice(eq + 1));
    else positional.push(t);
  }
  return { name, positional, args };
}

const list = (v: string | undefined): string[] => (v ? v.replace(/^\(|\)$/g, '').split(',').map((s) => s.trim()).filter(Boolean) : []);

export function describeEntry(e: Entry): string {
  if (e.type === 'conf-change') {
    const cc = decodeConfChange(e.data);
    return `${e.index}/${e.term} ConfChange ${cc.kind} ${cc.node}`;
  }
  return `${e.index}/${e.term} ${e.data.length ? `"${dec(e.data)}"` : 'empty'}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${m.type} Term:${m.term}`;
  if (m.logTerm !== undefined || (m.index !== undefined && m.type !== 'MsgAppResp')) s += ` Log:${m.logTerm ?? 0}/${m.index ?? 0}`;
  else if (m.index !== undefined) s += ` Index:${m.index}`;
  if (m.commit !== undefined) s += ` Commit:${m.commit}`;
  if (m.entries?.length) s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint ?? 0}${m.logTermHint !== undefined ? `/${m.logTermHint}` : ''})`;
  if (m.snapshot && m.type === 'MsgApp') s += ` Genesis:(${m.snapshot.metadata.confState.voters.join(',')})`; // the index-0 bootstrap configuration, for joiners
  else if (m.snapshot) s += ` Snapshot: Index:${m.snapshot.metadata.index} Term:${m.snapshot.metadata.term} Voters:(${m.snapshot.metadata.confState.voters.join(',')})${m.snapshot.metadata.confState.learners.length ? ` Learners:(${m.snapshot.metadata.confState.learners.join(',')})` : ''}`;
  if (m.context !== undefined) s += ` Context:${m.context}`;
  return s;
}

export class ScriptedNetwork {
  private readonly nodes = new Map<NodeId, Node>();
  private readonly isolated = new Set<NodeId>();

  run(cmd: Command): string {
    const out: string[] = [];
    const ids = cmd.positional;
    switch (cmd.name) {
      case 'add-nodes': {
        const voters = list(cmd.args.get('voters'));
        const learners = list(cmd.args.get('learners'));
        const targets = cmd.args.has('ids') ? list(cmd.args.get('ids')) : [...voters, ...learners];
        for (const id of targets) {
          const storage = new MemoryStorage({ confState: cmd.args.has('ids') && !voters.includes(id) && !learners.includes(id) ? { voters: [], learners: [] } : { voters, learners } });
          const raw = new RawNode({
            id,
            storage,
            electionTick: ELECTION,
            heartbeatTick: HEARTBEAT,
            rand: createSeededRandom(Number(id) * 7919),
            preVote: cmd.args.get('prevote') === 'true',
            checkQuorum: cmd.args.get('checkquorum') === 'true',
            ...(cmd.args.has('max-inflight') ? { maxInflightMsgs: Number(cmd.args.get('max-inflight')) } : {}),
          });
          this.nodes.set(id, { id, raw, storage, confState: storage.initialState().confState, inbox: [] });
          out.push(`added ${id}`);
        }
        break;
      }
      case 'campaign':
        this.node(ids[0]).raw.campaign();
        break;
      case 'propose':
        this.node(ids[0]).raw.propose(enc(ids[1] ?? ''));
        break;
      case 'propose-conf-change': {
        const [kind, target] = [...cmd.args.entries()][0] ?? [];
        if (kind !== 'add-voter' && kind !== 'add-learner' && kind !== 'remove') throw new Error(`propose-conf-change: ${String(kind)}`);
        const cc: ConfChange = { kind, node: target!, address: `127.0.0.1:${7000 + Number(target)}` };
        this.node(ids[0]).raw.proposeConfChange(cc);
        break;
      }
      case 'transfer-leadership':
        this.node(cmd.args.get('from')).raw.transferLeader(cmd.args.get('to')!);
        break;
      case 'report-unreachable':
        this.node(ids[0]).raw.reportUnreachable(ids[1]!);
        break;
      case 'read-index':
        this.node(ids[0]).raw.readIndex(ids[1] ?? 'ctx');
        break;
      case 'tick-heartbeat':
        for (let i = 0; i < HEARTBEAT; i++) this.node(ids[0]).raw.tick();
        break;
      case 'tick-election':
        for (let i = 0; i < 2 * ELECTION; i++) this.node(ids[0]).raw.tick();
        break;
      case 'process-ready':
        for (const id of ids) this.processReady(this.node(id), out);
        break;
      case 'deliver-msgs':
        for (const id of ids) this.deliver(this.node(id), out, cmd.args.get('drop') === 'true');
        break;
      case 'stabilize':
        this.stabilize(ids.length ? ids : [...this.nodes.keys()], out);
        break;
      case 'isolate':
        this.isolated.add(ids[0]!);
        break;
      case 'recover':
        this.isolated.clear();
        break;
      case 'compact': {
        const n = this.node(ids[0]);
        const index = Number(ids[1]);
        n.storage.createSnapshot(index, n.confState, enc(`snap@${index}`));
        n.storage.compact(index);
        out.push(`${n.id}: log from ${n.storage.firstIndex()}`);
        break;
      }
      case 'raft-state':
        for (const n of [...this.nodes.values()].sort((a, b) => a.id.localeCompare(b.id))) {
          const st = n.raw.status();
          const kind = st.learners.includes(n.id) ? 'Learner' : st.voters.includes(n.id) ? 'Voter' : 'None';
          out.push(`${n.id}: ${st.role} (${kind}) Term:${st.term} Lead:${st.lead || 0} Commit:${st.commit}${this.isolated.has(n.id) ? ' [isolated]' : ''}`);
        }
        break;
      case 'raft-log': {
        const n = this.node(ids[0]);
        const first = n.storage.firstIndex();
        const last = n.storage.lastIndex();
        out.push(last < first ? 'log is empty' : n.storage.entries(first, last + 1).map(describeEntry).join('\n'));
        break;
      }
      case 'status': {
        const st = this.node(ids[0]).raw.status();
        for (const [id, p] of Object.entries(st.progress ?? {}).sort()) out.push(`${id}: ${p.state} match=${p.match} next=${p.next}`);
        if (!st.progress) out.push(`${st.id} is not the leader`);
        break;
      }
      default:
        throw new Error(`unknown command ${cmd.name}`);
    }
    return out.length ? out.join('\n') : 'ok';
  }

  private node(id: string | undefined): Node {
    const n = id === undefined ? undefined : this.nodes.get(id);
    if (!n) throw new Error(`no node ${String(id)}`);
    return n;
  }

  /** The driver's Ready loop of raw-node.ts, in its documented order, printing each step. */
  private processReady(n: Node, out: string[]): boolean {
    if (!n.raw.hasReady()) return false;
    const rd = n.raw.ready();
    out.push(`> ${n.id} handling Ready`);
    if (rd.softState) out.push(`  Lead:${rd.softState.lead || 0} State:${rd.softState.role}`);
    if (rd.hardState) out.push(`  HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote || 0} Commit:${rd.hardState.commit}`);
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      n.confState = rd.snapshot.metadata.confState;
      out.push(`  Snapshot Index:${rd.snapshot.metadata.index} Term:${rd.snapshot.metadata.term}`);
    }
    if (rd.entries.length) {
      n.storage.append(rd.entries);
      out.push('  Entries:', ...rd.entries.map((e) => `  ${describeEntry(e)}`));
    }
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    if (rd.messages.length) {
      out.push('  Messages:', ...rd.messages.map((m) => `  ${describeMessage(m)}`));
      for (const m of rd.messages) this.nodes.get(m.to)?.inbox.push(m);
    }
    if (rd.committedEntries.length) {
      out.push('  CommittedEntries:', ...rd.committedEntries.map((e) => `  ${describeEntry(e)}`));
      for (const e of rd.committedEntries) {
        if (e.type === 'conf-change') {
          n.confState = n.raw.applyConfChange(decodeConfChange(e.data));
          out.push(`  INFO ${n.id} applied: voters=(${n.confState.voters.join(',')})${n.confState.learners.length ? ` learners=(${n.confState.learners.join(',')})` : ''}`);
        }
      }
    }
    for (const r of rd.readStates) out.push(`  ReadState Index:${r.index} Context:${r.context}`);
    n.raw.advance(rd);
    return true;
  }

  private deliver(n: Node, out: string[], drop: boolean): boolean {
    if (n.inbox.length === 0) return false;
    const msgs = n.inbox;
    n.inbox = [];
    out.push(`> ${n.id} ${drop ? 'dropping' : 'receiving'} messages`);
    for (const m of msgs) {
      const cut = this.isolated.has(m.from) || this.isolated.has(m.to);
      out.push(`  ${describeMessage(m)}${cut ? ' (dropped: isolated)' : ''}`);
      if (drop || cut) continue;
      try {
        n.raw.step(m);
      } catch (err) {
        out.push(`  error: ${(err as Error).message}`);
      }
    }
    return true;
  }

  private stabilize(ids: string[], out: string[]): void {
    for (let round = 0; round < 100; round++) {
      let any = false;
      for (const id of [...ids].sort()) any = this.processReady(this.node(id), out) || any;
      for (const id of [...ids].sort()) any = this.deliver(this.node(id), out, false) || any;
      if (!any) return;
    }
    throw new Error('did not stabilize within 100 rounds');
  }
}
