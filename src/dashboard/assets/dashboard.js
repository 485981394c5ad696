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
 *   #config[data-reload=ok|rejected], #raft[data-raft], #sticky[data-sticky] (configured|not-configured).
 * - Nothing is written to the console: fetch failures show in a banner instead.
 *
 * Sticky panel: reads `count`, `storeUp` and `fallbacks` from status.sticky, the Redis topology
 * (`redis.kind`, `redis.primaries[{node, serves}]`, `redis.failovers`) when there is one, and also accepts the
 * resolver's stats names (cacheSize / pins, breaker, fallbackHash + fallbackLastKnown) so the panel
 * works whichever shape the sticky part reports.
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

  /** Previous `requests` sample per "svc/id", for the client-side request rate. */
  const prevSamples = new Map();
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
    renderServices(st.services ?? {}, nowMs);
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
    const head = el('tr', null, ...[
      'upstream', 'url', 'health', 'state', 'source', 'in-flight', 'req/s', 'p50', 'p99', 'ejections', 'ring share',
    ].map((h) => el('th', { scope: 'col' }, h)));
    const rows = ups.map((u) => renderUpstream(name, u, nowMs, seen));
    const table = el('table', { class: 'upstreams' },
      el('caption', null, `upstreams of ${name}`),
      el('thead', null, head),
      el('tbody', null, ...(rows.length ? rows : [el('tr', null, el('td', { colspan: 11, class: 'muted' }, 'no upstreams'))])));
    section.append(table);
    return section;
  }

  function renderUpstream(service, u, nowMs, seen) {
    const key = `${service}/${u.id}`;
    seen.add(key);
    const health = healthWord(u.health);
    const rate = requestRate(key, u.requests, nowMs);
    const healthCell = el('td', { class: `health ${health}` }, HEALTH_LABEL[health]);
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
    el('td', { class: 'url' }, u.url),
    healthCell,
    el('td', null, u.state ?? '—'),
    el('td', null, u.source ?? '—'),
    el('td', { class: 'num' }, u.inFlight ?? '—'),
    el('td', { class: 'num' }, rate === undefined ? '—' : fmtNum(rate, 1)),
    el('td', { class: 'num' }, fmtMs(u.latencyMs && u.latencyMs.p50)),
    el('td', { class: 'num' }, fmtMs(u.latencyMs && u.latencyMs.p99)),
    el('td', { class: u.ejected ? 'bad' : undefined }, ejections),
    el('td', { class: 'num' }, typeof u.ringShare === 'number' ? `${(u.ringShare * 100).toFixed(1)} %` : '—'));
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
    return rate;
  }

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
    const head = el('tr', null, ...['peer', 'address', 'role', 'match index', 'last contact', 'link'].map((h) => el('th', { scope: 'col' }, h)));
    const rows = peers.map((p) => el('tr', { 'data-peer': p.id },
      el('th', { scope: 'row' }, p.id, p.id === raft.leader ? ' (leader)' : ''),
      el('td', null, p.address ?? '—'),
      el('td', null, p.suffrage ?? '—'),
      el('td', { class: 'num' }, p.match ?? (raft.role === 'leader' ? '—' : 'leader only')),
      el('td', { class: 'num' }, typeof p.lastContactMs === 'number' ? `${p.lastContactMs} ms ago` : 'never'),
      el('td', null, p.connected ? '✔ connected' : '✖ down')));
    parts.push(el('table', { class: 'peers' },
      el('caption', null, `voters: ${(raft.voters ?? []).join(', ') || '—'}; learners: ${(raft.learners ?? []).join(', ') || '—'}`),
      el('thead', null, head),
      el('tbody', null, ...(rows.length ? rows : [el('tr', null, el('td', { colspan: 6, class: 'muted' }, 'no other peers'))]))));
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
    const count = firstNumber(sticky.count, sticky.pins, sticky.cacheSize);
    const up = typeof sticky.storeUp === 'boolean' ? sticky.storeUp
      : sticky.store && typeof sticky.store.up === 'boolean' ? sticky.store.up
        : typeof sticky.breaker === 'string' ? sticky.breaker !== 'open' : undefined;
    const fallbacks = firstNumber(sticky.fallbacks,
      typeof sticky.fallbackHash === 'number' || typeof sticky.fallbackLastKnown === 'number'
        ? (sticky.fallbackHash ?? 0) + (sticky.fallbackLastKnown ?? 0) : undefined);
    const storeName = typeof sticky.store === 'string' ? sticky.store : sticky.store && sticky.store.kind;
    section.dataset.storeUp = up === undefined ? 'unknown' : String(up);
    const redis = sticky.redis;
    const facts = [
      fact('pins', count ?? '—'),
      fact('store', `${up === undefined ? '? unknown' : up ? '✔ up' : '✖ down'}${storeName ? ` (${storeName})` : ''}`),
      fact('fallbacks', fallbacks ?? '—'),
    ];
    if (redis) {
      section.dataset.redisTopology = redis.kind;
      facts.push(fact('redis topology', `${redis.kind} (${redis.status})`), fact('failovers seen', redis.failovers));
      if (redis.lastFailover) facts.push(fact('last failover', `${redis.lastFailover.from} → ${redis.lastFailover.to} at ${redis.lastFailover.at}`));
      if (redis.lastError) facts.push(fact('last redis error', `${redis.lastError}${redis.lastErrorAt ? ` (${redis.lastErrorAt})` : ''}`));
    }
    const parts = [el('dl', { class: 'facts' }, ...facts)];
    // Which node is primary for what (Cluster: slot ranges; single / Sentinel: all keys).
    if (redis && Array.isArray(redis.primaries) && redis.primaries.length) {
      parts.push(el('table', { class: 'peers', id: 'redis-primaries' },
        el('caption', null, 'Redis primaries'),
        el('thead', null, el('tr', null, el('th', null, 'node'), el('th', null, 'serves'))),
        el('tbody', null, ...redis.primaries.map((p) => el('tr', null, el('td', null, p.node), el('td', null, p.serves))))));
    }
    body.replaceChildren(...parts);
  }

  function firstNumber(...xs) {
    return xs.find((x) => typeof x === 'number' && Number.isFinite(x));
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
