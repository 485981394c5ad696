/*
 * meshgate live dashboard (DESIGN.md §8) — plain browser JavaScript, no build step, no dependencies.
 *
 * Data flow:
 * - GET /api/v1/status is the only source of what is shown; the page never derives state from events.
 * - GET /api/v1/events (EventSource) says *when* to look again: every event schedules a status fetch,
 *   throttled to one per MIN_REFRESH_MS. EventSource reconnects on its own (the server sends
 *   `retry: 1000`); the feed indicator shows whether it is connected.
 * - A POLL_MS poll refreshes counters (in-flight, request rate, latency) that change without events,
 *   and keeps the page correct if the event stream is cut.
 *
 * Invariants:
 * - Every string from the server reaches the DOM through textContent or an attribute value, never
 *   through innerHTML: upstream ids, URLs and reload errors come from config files and admin writes.
 * - At most one status fetch is in flight; a refresh asked for meanwhile runs once after it.
 * - Health is readable without colour: a symbol and a word in every cell, colour only as a second cue.
 * - Stable data attributes for tests and scripts: [data-service], [data-panic], [data-upstream="svc/id"]
 *   with data-health (healthy|unhealthy|unknown), data-ejected, data-state, data-source;
 *   #config[data-reload=ok|rejected], #raft[data-raft], #sticky[data-sticky] (configured|not-configured),
 *   #workers[data-workers=absent|N] with tr[data-worker=index][data-state].
 * - Nothing is written to the console: fetch failures show in a banner instead.
 *
 * Sticky panel: status.sticky is `{ configured, store, storeUp, services: { name: resolver stats } }`;
 * the panel sums the per-service counters and lists each service.
 *
 * History: every POLL_MS the page keeps one sample per service (req/s, p99, 5xx/s) computed from the
 * deltas of status.services[name].traffic (cumulative counts and duration buckets, as Prometheus'
 * rate() and histogram_quantile() do), HISTORY_POINTS of them (5 minutes) in fixed-size arrays, and
 * draws them as inline SVG sparklines: memory stays flat however long the page is open.
 *
 * Raft peers: only the leader talks to every peer. On a follower another follower is neither
 * "connected" nor "down" (followers exchange nothing between elections), so the link column says so.
 *
 * Redis topology (when the sticky part reports one): `redis.kind`, `redis.primaries[{node, serves}]`
 * (which node is primary for which slots), `redis.failovers`, the last failover and the last error.
 */
/* global document, window, EventSource, fetch, performance, setTimeout, setInterval -- browser script, not Node */
(() => {
  'use strict';

  /** ≤ 4 refreshes a second: a burst of events (a fleet-wide flap) must not become a burst of fetches. */
  const MIN_REFRESH_MS = 250;
  /** Fallback poll for counters and for a cut event stream. */
  const POLL_MS = 2000;
  /** Shortest window for the request rate; under the poll period so the poll always updates it. */
  const RATE_WINDOW_MS = 1500;
  /** Events kept in the "Recent events" list. */
  const MAX_EVENTS = 30;
  /** Event types of src/observability/events.ts; EventSource needs a listener per named type. */
  const EVENT_TYPES = [
    'health:changed', 'outlier:ejected', 'outlier:restored', 'panic:changed', 'config:reloaded',
    'config:rejected', 'membership:changed', 'raft:leader', 'raft:role', 'raft:quorum', 'sticky:store',
    'breaker:open',
  ];
  const HEALTH_LABEL = {
    healthy: '✔ healthy',
    unhealthy: '✖ unhealthy',
    unknown: '? unknown',
  };

  /** Samples kept per service for the sparklines: 150 × 2 s = 5 minutes. */
  const HISTORY_POINTS = 150;
  /** Previous `requests` sample per "svc/id", for the client-side request rate. */
  const prevSamples = new Map();
  /** Per service: the last traffic snapshot and the sample arrays. */
  const history = new Map();
  /** Per "svc/id": recent req/s figures (one per rate window), for the small line in the req/s cell. */
  const upHistory = new Map();
  const UP_POINTS = 60;
  let fetching = false;
  let again = false;
  let lastFetchAt = -Infinity;
  let timer = undefined;

  // ---- DOM helpers (text only) ---------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null) continue;
        if (k === 'class') node.className = v;
        else node.setAttribute(k, String(v));
      }
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      node.append(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function setText(id, value) {
    const n = document.getElementById(id);
    if (n) n.textContent = value === undefined || value === null ? '—' : String(value);
    return n;
  }
  function fmtNum(n, digits) {
    return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '—';
  }
  function fmtMs(n) {
    return typeof n === 'number' && Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : '—';
  }
  function fmtDuration(s) {
    if (typeof s !== 'number' || !Number.isFinite(s)) return '—';
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
    return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
  }
  function fmtTime(iso) {
    if (typeof iso !== 'string' && typeof iso !== 'number') return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
  }
  function healthWord(h) {
    return h === 'healthy' || h === 'unhealthy' ? h : 'unknown';
  }
  function notConfigured(text) {
    return el('p', { class: 'muted', 'data-not-configured': 'true' }, text);
  }

  // ---- fetching ------------------------------------------------------------------------------
  /** Schedules a status fetch, at most one per MIN_REFRESH_MS and one at a time. */
  function requestRefresh() {
    if (fetching) {
      again = true;
      return;
    }
    if (timer !== undefined) return;
    const wait = Math.max(0, lastFetchAt + MIN_REFRESH_MS - performance.now());
    timer = setTimeout(() => {
      timer = undefined;
      void refresh();
    }, wait);
  }

  async function refresh() {
    fetching = true;
    lastFetchAt = performance.now();
    try {
      const res = await fetch('/api/v1/status', { cache: 'no-store', headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`GET /api/v1/status answered ${res.status}`);
      const status = await res.json();
      render(status, performance.now());
      showFetchError(undefined);
    } catch (err) {
      showFetchError(`admin API unreachable: ${err && err.message ? err.message : String(err)} — retrying`);
    } finally {
      fetching = false;
      if (again) {
        again = false;
        requestRefresh();
      }
    }
  }

  function showFetchError(text) {
    const n = document.getElementById('fetch-error');
    if (!n) return;
    n.hidden = text === undefined;
    n.textContent = text ?? '';
  }

  // ---- rendering -----------------------------------------------------------------------------
  function render(st, nowMs) {
    setText('peer-id', st.id);
    setText('peer-version', st.version);
    setText('peer-uptime', fmtDuration(st.uptimeSeconds));
    const serving = setText('peer-serving', st.serving === false ? '✖ draining' : '✔ yes');
    if (serving) serving.dataset.serving = String(st.serving !== false);
    setText('peer-inflight', st.inFlight);
    document.title = `meshgate ${st.id ?? ''} — dashboard`;
    renderConfig(st);
    sampleHistory(st.services ?? {}, nowMs);
    renderServices(st.services ?? {}, nowMs);
    renderWorkers(st.workers);
    renderRaft(st.raft);
    renderSticky(st.sticky);
  }

  function renderConfig(st) {
    const section = document.getElementById('config');
    const gen = setText('config-generation', st.generation);
    if (gen) gen.dataset.generation = String(st.generation ?? '');
    const r = st.lastReload;
    const errors = document.getElementById('reload-errors');
    const restart = document.getElementById('reload-restart');
    if (!r) {
      section.dataset.reload = 'unknown';
      setText('reload-result', 'none yet');
      errors.replaceChildren();
      restart.replaceChildren();
      return;
    }
    section.dataset.reload = r.ok ? 'ok' : 'rejected';
    const result = setText('reload-result',
      `${r.ok ? '✔ applied' : '✖ rejected, the previous config keeps serving'} (source ${r.source ?? '?'}, ${fmtTime(r.at)})`);
    result.className = r.ok ? 'ok' : 'bad';
    errors.replaceChildren(...(r.errors ?? []).map((e) => el('li', { class: 'bad' }, e)));
    restart.replaceChildren(...(r.restartRequired ?? []).map((k) => el('li', null, `${k}: changed, needs a restart (running value kept)`)));
  }

  function renderServices(services, nowMs) {
    const body = document.getElementById('services-body');
    const names = Object.keys(services).sort();
    if (names.length === 0) {
      body.replaceChildren(el('p', { class: 'muted' }, 'no services configured'));
      return;
    }
    const seen = new Set();
    body.replaceChildren(...names.map((name) => renderService(name, services[name], nowMs, seen)));
    for (const key of prevSamples.keys()) if (!seen.has(key)) prevSamples.delete(key);
    for (const key of upHistory.keys()) if (!seen.has(key)) upHistory.delete(key);
  }

  function renderService(name, svc, nowMs, seen) {
    const ups = Array.isArray(svc.upstreams) ? svc.upstreams : [];
    const healthyCount = ups.filter((u) => u.eligible).length;
    const section = el('section', { class: 'service', 'data-service': name, 'data-panic': String(Boolean(svc.panic)) },
      el('h3', null, name, ' ',
        el('span', { class: 'muted' }, `${svc.balancer ?? ''}${svc.hashOn ? ` on ${svc.hashOn}` : ''} · ${healthyCount}/${ups.length} eligible`)));
    if (svc.panic) {
      section.append(el('p', { class: 'alert panic', role: 'alert', 'data-panic-banner': name },
        '⚠ PANIC MODE: too few healthy upstreams, so health is ignored and every active upstream takes traffic.'));
    }
    section.append(renderTrends(name), ...ringPicture(name, ups));
    const head = el('tr', null, ...COLUMNS.map((h) => el('th', { scope: 'col' }, h)));
    const rows = ups.map((u) => renderUpstream(name, u, nowMs, seen));
    const table = el('table', { class: 'upstreams cards' },
      el('caption', null, `upstreams of ${name}`),
      el('thead', null, head),
      el('tbody', null, ...(rows.length ? rows : [el('tr', null, el('td', { colspan: COLUMNS.length, class: 'muted' }, 'no upstreams'))])));
    section.append(table);
    return section;
  }

  function renderUpstream(service, u, nowMs, seen) {
    const key = `${service}/${u.id}`;
    seen.add(key);
    const health = healthWord(u.health);
    const rate = requestRate(key, u.requests, nowMs);
    const healthCell = el('td', { class: `health ${health}`, 'data-label': 'health' }, HEALTH_LABEL[health]);
    const since = u.healthSince ? Date.parse(u.healthSince) : NaN;
    if (Number.isFinite(since)) healthCell.append(' ', el('span', { class: 'muted since', 'data-since': u.healthSince }, `for ${fmtDuration((Date.now() - since) / 1000)}`));
    if (u.ejected) healthCell.append(el('br'), el('span', { class: 'bad' }, '⏏ ejected'));
    if (u.eligible === false && !u.ejected && health !== 'unhealthy') healthCell.append(el('br'), el('span', { class: 'muted' }, 'not eligible'));
    if (u.lastCheck && u.lastCheck.error) healthCell.title = String(u.lastCheck.error);
    const ejections = u.ejected
      ? `${u.timesEjected ?? 0}× · until ${fmtTime(u.ejectedUntil)}`
      : `${u.timesEjected ?? 0}×`;
    return el('tr', {
      'data-upstream': key,
      'data-health': health,
      'data-ejected': String(Boolean(u.ejected)),
      'data-state': u.state ?? '',
      'data-source': u.source ?? '',
      class: u.ejected || health === 'unhealthy' ? 'down' : undefined,
    },
    el('th', { scope: 'row' }, u.id),
    cell('url', u.url, 'url'),
    healthCell,
    cell('state', u.state ?? '—'),
    cell('source', u.source ?? '—'),
    cell('in-flight', u.inFlight ?? '—', 'num'),
    reqCell(key, rate),
    cell('p50', fmtMs(u.latencyMs && u.latencyMs.p50), 'num'),
    cell('p99', fmtMs(u.latencyMs && u.latencyMs.p99), 'num'),
    cell('5xx', u.responses5xx ?? '—', u.responses5xx ? 'num bad' : 'num'),
    cell('errors', u.failures ?? '—', u.failures ? 'num bad' : 'num'),
    cell('ejections', ejections, u.ejected ? 'bad' : undefined),
    cell('ring share', typeof u.ringShare === 'number' ? `${(u.ringShare * 100).toFixed(1)} %` : '—', 'num'));
  }

  const COLUMNS = ['upstream', 'url', 'health', 'state', 'source', 'in-flight', 'req/s', 'p50', 'p99', '5xx', 'errors', 'ejections', 'ring share'];

  /** req/s with a small line of its recent values (per upstream). */
  function reqCell(key, rate) {
    const td = cell('req/s', rate === undefined ? '—' : fmtNum(rate, 1), 'num');
    const h = upHistory.get(key);
    if (h && h.length > 1) td.prepend(sparkline(h, `req/s of ${key}`, { width: 48, height: 14, points: UP_POINTS, cls: 'spark mini' }), ' ');
    return td;
  }

  /** A table cell that also names its column (data-label), for the one-card-per-row layout on phones. */
  function cell(label, value, cls) {
    return el('td', { 'data-label': label, class: cls }, value);
  }

  /**
   * Requests per second from the `requests` counter's change over at least RATE_WINDOW_MS (event
   * refreshes come every 250 ms; a longer window keeps the figure steady). A counter that went down
   * (a reload rebuilt the upstream) restarts the measurement instead of showing a negative rate.
   */
  function requestRate(key, requests, nowMs) {
    if (typeof requests !== 'number') return undefined;
    const prev = prevSamples.get(key);
    if (prev === undefined || requests < prev.requests) {
      prevSamples.set(key, { requests, atMs: nowMs, rate: undefined });
      return undefined;
    }
    if (nowMs - prev.atMs < RATE_WINDOW_MS) return prev.rate;
    const rate = ((requests - prev.requests) * 1000) / (nowMs - prev.atMs);
    prevSamples.set(key, { requests, atMs: nowMs, rate });
    let h = upHistory.get(key);
    if (!h) upHistory.set(key, (h = []));
    h.push(rate);
    if (h.length > UP_POINTS) h.shift();
    return rate;
  }

  /** One row per data-plane worker (docs/workers.md); the section stays hidden without `workers`. */
  function renderWorkers(workers) {
    const section = document.getElementById('workers');
    const body = document.getElementById('workers-body');
    if (!Array.isArray(workers)) {
      section.hidden = true;
      section.dataset.workers = 'absent';
      body.replaceChildren();
      return;
    }
    section.hidden = false;
    section.dataset.workers = String(workers.length);
    const head = el('tr', null, ...WORKER_COLUMNS.map((h) => el('th', { scope: 'col' }, h)));
    const rows = workers.map((w) => {
      const started = typeof w.startedAt === 'string' ? Date.parse(w.startedAt) : NaN;
      const state = typeof w.state === 'string' ? w.state : 'unknown';
      return el('tr', { 'data-worker': w.index, 'data-state': state, class: state === 'ready' ? undefined : 'down' },
        el('th', { scope: 'row' }, `#${w.index ?? '?'}`),
        cell('pid', w.pid ?? '—', 'num'),
        cell('state', `${WORKER_STATE_LABEL[state] ?? '?'} ${state}`, state === 'ready' ? 'ok' : 'bad'),
        cell('restarts', w.restarts ?? '—', w.restarts ? 'num bad' : 'num'),
        cell('requests', w.requests ?? '—', 'num'),
        cell('in-flight', w.inFlight ?? '—', 'num'),
        cell('websockets', w.websockets ?? '—', 'num'),
        cell('up for', Number.isFinite(started) ? fmtDuration((Date.now() - started) / 1000) : '—', 'num'));
    });
    body.replaceChildren(el('table', { class: 'workers cards' },
      el('caption', null, `${workers.length} data-plane worker${workers.length === 1 ? '' : 's'}`),
      el('thead', null, head),
      el('tbody', null, ...(rows.length ? rows : [el('tr', null, el('td', { colspan: WORKER_COLUMNS.length, class: 'muted' }, 'no workers'))]))));
  }

  const WORKER_COLUMNS = ['worker', 'pid', 'state', 'restarts', 'requests', 'in-flight', 'websockets', 'up for'];
  const WORKER_STATE_LABEL = { ready: '✔', starting: '…', draining: '⏸' };

  function renderRaft(raft) {
    const section = document.getElementById('raft');
    const body = document.getElementById('raft-body');
    if (!raft || raft.configured === false) {
      section.dataset.raft = 'not-configured';
      body.replaceChildren(notConfigured('not configured — this peer takes its upstreams from the config file only'));
      return;
    }
    section.dataset.raft = 'configured';
    const facts = el('dl', { class: 'facts' },
      fact('role', raft.role),
      fact('term', raft.term),
      fact('leader', raft.leader ?? 'unknown'),
      fact('commit', raft.commitIndex),
      fact('applied', raft.appliedIndex),
      fact('quorum', raft.hasQuorum === false ? '✖ lost' : '✔ yes'));
    const parts = [facts];
    if (raft.hasQuorum === false) {
      parts.push(el('p', { class: 'alert', role: 'alert', 'data-no-quorum': 'true' },
        '⚠ No quorum: routing keeps the last membership this peer knew; membership writes are refused.'));
    }
    if (raft.failed) parts.push(el('p', { class: 'alert', role: 'alert' }, `✖ storage failed: ${raft.failed}`));
    if (raft.removed) parts.push(el('p', { class: 'alert', role: 'alert' }, 'this peer was removed from the group'));
    const peers = Array.isArray(raft.peers) ? raft.peers : [];
    const isLeader = raft.role === 'leader';
    const head = el('tr', null, ...['peer', 'address', 'role', 'match index', 'lag', 'last contact', 'link'].map((h) => el('th', { scope: 'col' }, h)));
    const rows = peers.map((p) => el('tr', { 'data-peer': p.id, 'data-link': linkState(raft, p) },
      el('th', { scope: 'row' }, p.id, p.id === raft.leader ? ' (leader)' : ''),
      cell('address', p.address ?? '—', 'url'),
      cell('role', p.suffrage ?? '—'),
      cell('match index', p.match ?? (isLeader ? '—' : 'leader only'), 'num'),
      cell('lag', isLeader && typeof p.match === 'number' && typeof raft.lastIndex === 'number' ? `${Math.max(0, raft.lastIndex - p.match)} entries` : '—', 'num'),
      cell('last contact', typeof p.lastContactMs === 'number' ? `${p.lastContactMs} ms ago` : 'never', 'num'),
      cell('link', LINK_LABEL[linkState(raft, p)])));
    parts.push(el('table', { class: 'peers cards' },
      el('caption', null, `voters: ${(raft.voters ?? []).join(', ') || '—'}; learners: ${(raft.learners ?? []).join(', ') || '—'}`),
      el('thead', null, head),
      el('tbody', null, ...(rows.length ? rows : [el('tr', null, el('td', { colspan: 7, class: 'muted' }, 'no other peers'))]))));
    body.replaceChildren(...parts);
  }

  function renderSticky(sticky) {
    const section = document.getElementById('sticky');
    const body = document.getElementById('sticky-body');
    if (!sticky || sticky.configured === false) {
      section.dataset.sticky = 'not-configured';
      body.replaceChildren(notConfigured('not configured — no service has sticky sessions'));
      return;
    }
    section.dataset.sticky = 'configured';
    const per = sticky.services && typeof sticky.services === 'object' ? sticky.services : {};
    const names = Object.keys(per).sort();
    const sum = (f) => names.reduce((acc, n) => acc + (typeof f(per[n]) === 'number' ? f(per[n]) : 0), 0);
    const up = typeof sticky.storeUp === 'boolean' ? sticky.storeUp : undefined;
    section.dataset.storeUp = up === undefined ? 'unknown' : String(up);
    const fallbacks = (x) => (x.fallbackHash ?? 0) + (x.fallbackLastKnown ?? 0);
    const facts = el('dl', { class: 'facts' },
      fact('cached pins', sum((x) => x.cacheSize)),
      fact('resolves', sum((x) => x.resolves)),
      fact('store', `${up === undefined ? '? unknown' : up ? '✔ up' : '✖ down'}${typeof sticky.store === 'string' ? ` (${sticky.store})` : ''}`),
      fact('fallbacks', sum(fallbacks)));
    const head = el('tr', null, ...['service', 'resolves', 'hits', 'created', 'moved', 'fallbacks', 'rejects', 'cached', 'store p99'].map((h) => el('th', { scope: 'col' }, h)));
    const rows = names.map((n) => {
      const x = per[n];
      return el('tr', { 'data-sticky-service': n },
        el('th', { scope: 'row' }, n),
        cell('resolves', x.resolves ?? '—', 'num'),
        cell('hits', x.hits ?? '—', 'num'),
        cell('created', x.created ?? '—', 'num'),
        cell('moved', (x.moved ?? 0) + (x.adopted ?? 0), 'num'),
        cell('fallbacks', fallbacks(x), fallbacks(x) ? 'num bad' : 'num'),
        cell('rejects', x.rejects ?? '—', x.rejects ? 'num bad' : 'num'),
        cell('cached', x.cacheSize ?? '—', 'num'),
        cell('store p99', fmtMs(x.storeLatencyMs && x.storeLatencyMs.samples ? x.storeLatencyMs.p99 : undefined), 'num'));
    });
    const parts = [facts];
    const redis = sticky.redis;
    if (redis) {
      section.dataset.redisTopology = redis.kind;
      facts.append(fact('redis topology', `${redis.kind} (${redis.status})`), fact('failovers seen', redis.failovers));
      if (redis.lastFailover) facts.append(fact('last failover', `${redis.lastFailover.from} → ${redis.lastFailover.to} at ${redis.lastFailover.at}`));
      if (redis.lastError) facts.append(fact('last redis error', `${redis.lastError}${redis.lastErrorAt ? ` (${redis.lastErrorAt})` : ''}`));
      // Which node is primary for what (Cluster: slot ranges; single / Sentinel: all keys).
      if (Array.isArray(redis.primaries) && redis.primaries.length) {
        parts.push(el('table', { class: 'peers', id: 'redis-primaries' },
          el('caption', null, 'Redis primaries'),
          el('thead', null, el('tr', null, el('th', null, 'node'), el('th', null, 'serves'))),
          el('tbody', null, ...redis.primaries.map((p) => el('tr', null, el('td', null, p.node), el('td', null, p.serves))))));
      }
    }
    parts.push(el('table', { class: 'sticky cards' }, el('thead', null, head), el('tbody', null, ...rows)));
    body.replaceChildren(...parts);
  }

  // ---- Raft link state -----------------------------------------------------------------------
  const LINK_LABEL = {
    connected: '✔ connected',
    down: '✖ down',
    'follower-peer': '— followers do not talk',
  };
  /** The leader talks to everyone; a follower only to the leader (another follower is not "down"). */
  function linkState(raft, p) {
    if (p.connected) return 'connected';
    if (raft.role !== 'leader' && p.id !== raft.leader && raft.leader !== undefined && raft.leader !== null) return 'follower-peer';
    return 'down';
  }

  // ---- history and sparklines ----------------------------------------------------------------
  function sampleHistory(services, nowMs) {
    for (const name of Object.keys(services)) {
      const t = services[name] && services[name].traffic;
      if (!t) continue;
      let h = history.get(name);
      if (!h) {
        h = { prev: undefined, rps: [], p99: [], e5xx: [] };
        history.set(name, h);
      }
      if (h.prev && nowMs - h.prev.atMs < POLL_MS * 0.9) continue;
      if (h.prev && t.requests >= h.prev.requests) {
        const dt = (nowMs - h.prev.atMs) / 1000;
        push(h.rps, (t.requests - h.prev.requests) / dt);
        push(h.e5xx, (t.errors5xx - h.prev.errors5xx) / dt);
        push(h.p99, quantile(0.99, t.le, t.buckets.map((b, i) => b - (h.prev.buckets[i] ?? 0)), t.requests - h.prev.requests));
      }
      h.prev = { atMs: nowMs, requests: t.requests, errors5xx: t.errors5xx, buckets: t.buckets };
    }
    for (const name of history.keys()) if (!(name in services)) history.delete(name);
  }

  function push(arr, v) {
    arr.push(v);
    if (arr.length > HISTORY_POINTS) arr.shift();
  }

  /** histogram_quantile over one interval: linear within the bucket; undefined without requests. */
  function quantile(q, le, cum, total) {
    if (!(total > 0)) return undefined;
    const rank = q * total;
    for (let i = 0; i < cum.length; i++) {
      if (cum[i] >= rank) {
        const lo = i === 0 ? 0 : le[i - 1];
        const hi = i < le.length ? le[i] : le[le.length - 1];
        const below = i === 0 ? 0 : cum[i - 1];
        const inBucket = cum[i] - below;
        return (lo + (hi - lo) * (inBucket > 0 ? (rank - below) / inBucket : 1)) * 1000;
      }
    }
    return le[le.length - 1] * 1000;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    return n;
  }

  function renderTrends(name) {
    const h = history.get(name);
    const wrap = el('div', { class: 'trends', 'data-trends': name });
    const series = [['req/s', h ? h.rps : [], (v) => fmtNum(v, 1)], ['p99', h ? h.p99 : [], fmtMs], ['5xx/s', h ? h.e5xx : [], (v) => fmtNum(v, 2)]];
    for (const [label, values, fmt] of series) {
      const last = values.length ? values[values.length - 1] : undefined;
      wrap.append(el('figure', { class: 'trend', 'data-series': `${name}/${label}`, 'data-points': values.length, 'data-last': last === undefined ? '' : String(last) },
        sparkline(values, `${label} of ${name}, last 5 minutes`),
        el('figcaption', null, `${label} `, el('strong', null, last === undefined ? '—' : fmt(last)))));
    }
    return wrap;
  }

  function sparkline(values, title, opts) {
    const W = opts ? opts.width : 150, H = opts ? opts.height : 32, N = opts ? opts.points : HISTORY_POINTS;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': title, class: opts ? opts.cls : 'spark' });
    const finite = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
    const max = Math.max(1e-9, ...finite);
    const step = W / Math.max(1, N - 1);
    const x0 = W - (values.length - 1) * step;
    const pts = [];
    values.forEach((v, i) => {
      if (typeof v === 'number' && Number.isFinite(v)) pts.push(`${(x0 + i * step).toFixed(1)},${(H - 2 - (v / max) * (H - 4)).toFixed(1)}`);
    });
    s.append(svg('line', { x1: 0, y1: H - 1, x2: W, y2: H - 1, class: 'axis' }));
    if (pts.length) s.append(svg('polyline', { points: pts.join(' '), class: 'line' }));
    return s;
  }

  /** The ring (or table) shares as one bar of proportional segments, for hash balancers. */
  function ringPicture(name, ups) {
    const shares = ups.filter((u) => typeof u.ringShare === 'number' && u.ringShare > 0);
    if (!shares.length) return [];
    const s = svg('svg', { viewBox: '0 0 100 6', preserveAspectRatio: 'none', class: 'ring', role: 'img', 'aria-label': `ring shares of ${name}` });
    let x = 0;
    shares.forEach((u, i) => {
      const w = u.ringShare * 100;
      const r = svg('rect', { x: x.toFixed(3), y: 0, width: w.toFixed(3), height: 6, class: `seg seg${i % 6}`, 'data-share': u.id });
      r.append(svg('title', {}));
      r.lastChild.textContent = `${u.id}: ${(u.ringShare * 100).toFixed(1)} %`;
      s.append(r);
      x += w;
    });
    return [el('div', { class: 'ring-wrap', 'data-ring': name }, s,
      el('p', { class: 'muted legend' }, shares.map((u) => `${u.id} ${(u.ringShare * 100).toFixed(1)} %`).join(' · ')))];
  }

  function fact(name, value) {
    return el('div', null, el('dt', null, name), el('dd', null, value === undefined || value === null ? '—' : String(value)));
  }

  // ---- events --------------------------------------------------------------------------------
  function describeEvent(type, d) {
    const who = d.service && d.upstream ? `${d.service}/${d.upstream}` : d.service ?? '';
    switch (type) {
      case 'health:changed': return `${who}: ${d.from} → ${d.to} (${d.reason})`;
      case 'outlier:ejected': return `${who} ejected (${d.reason}, ${d.timesEjected}×) until ${fmtTime(d.untilMs)}`;
      case 'outlier:restored': return `${who} restored${d.reason ? ` (${d.reason})` : ''}`;
      case 'panic:changed': return `${who}: panic ${d.panic ? 'ON' : 'off'} (${d.healthy}/${d.total} healthy)`;
      case 'config:reloaded': return `config generation ${d.generation} applied (${d.source})`;
      case 'config:rejected': return `config rejected (${d.source}): ${(d.errors ?? []).length} error(s)`;
      case 'membership:changed': return `${who} ${d.change} at index ${d.index}`;
      case 'raft:leader': return `leader ${d.leader ?? 'unknown'} (term ${d.term})`;
      case 'raft:role': return `role ${d.role} (term ${d.term})`;
      case 'raft:quorum': return d.hasQuorum ? 'quorum regained' : 'quorum lost';
      case 'sticky:store': return `pin store ${d.up ? 'up' : 'down'} (${d.reason})`;
      case 'breaker:open': return `${who}: circuit open (${d.kind})`;
      default: return type;
    }
  }

  function onEvent(type, ev) {
    let data = {};
    try {
      data = JSON.parse(ev.data);
    } catch {
      // A malformed event still means "something changed": refresh anyway.
    }
    const list = document.getElementById('events-list');
    if (list) {
      list.prepend(el('li', { 'data-event': type }, el('time', null, fmtTime(data.at ?? Date.now())), ' ', describeEvent(type, data)));
      while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    }
    requestRefresh();
  }

  function connect() {
    const feed = document.getElementById('feed');
    const setFeed = (state, text) => {
      feed.dataset.feed = state;
      feed.textContent = text;
    };
    if (typeof EventSource !== 'function') {
      setFeed('unsupported', 'polling only');
      return;
    }
    const es = new EventSource('/api/v1/events');
    es.addEventListener('open', () => {
      setFeed('live', '● live');
      requestRefresh(); // anything missed while disconnected
    });
    es.addEventListener('error', () => setFeed('reconnecting', '○ reconnecting…'));
    for (const type of EVENT_TYPES) es.addEventListener(type, (ev) => onEvent(type, ev));
    es.addEventListener('message', (ev) => onEvent('message', ev));
    window.addEventListener('pagehide', () => es.close());
  }

  function start() {
    connect();
    void refresh();
    setInterval(requestRefresh, POLL_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
