/**
 * W3C Trace Context passes through untouched (DESIGN.md §11): curl sends `traceparent` and a
 * multi-member `tracestate` through a real meshgate peer to a real backend, which echoes what it
 * received. Both arrive byte-for-byte, the upstream gets no other tracing header (with tracing off
 * meshgate adds nothing), and a request without them gets none invented.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, type PeerProcess } from '../helpers/meshgate.js';

let backend: Backend;
let peer: PeerProcess;

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
// Two vendors' list members (W3C Trace Context §3.3).
const TRACESTATE = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';

/** curl runs as a child process (asynchronously: the backend lives in this process). */
async function curlEcho(headers: string[]): Promise<Record<string, string>> {
  const args = ['-sS', '--max-time', '5', ...headers.flatMap((h) => ['-H', h]), `${peer.url}/echo`];
  const { stdout } = await promisify(execFile)('curl', args, { encoding: 'utf8' });
  return (JSON.parse(stdout) as { headers: Record<string, string> }).headers;
}

describe('W3C trace context through the proxy', () => {
  beforeAll(async () => {
    backend = await startBackend('t');
    const [dp, ap] = [await freePort(), await freePort()];
    peer = await startPeer(
      `
node: { id: trace, listen: 127.0.0.1:${dp}, admin: { listen: 127.0.0.1:${ap} }, accessLog: false }
routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    upstreams: [{ id: t, url: ${backend.url} }]
`,
      { dataPort: dp, adminPort: ap },
    );
  });
  afterAll(async () => {
    await peer?.stop();
    await backend?.close();
  });

  it('forwards traceparent and tracestate unchanged and adds no other trace header', async () => {
    const got = await curlEcho([`traceparent: ${TRACEPARENT}`, `tracestate: ${TRACESTATE}`]);
    expect(got.traceparent).toBe(TRACEPARENT);
    expect(got.tracestate).toBe(TRACESTATE);
    const tracing = Object.keys(got).filter((k) => /^(traceparent|tracestate|baggage|b3|x-b3-|x-datadog-|x-cloud-trace|uber-trace|x-amzn-trace)/.test(k));
    expect(tracing.sort()).toEqual(['traceparent', 'tracestate']);
  });

  it('keeps both lines of a tracestate split over two header lines (joined as HTTP says)', async () => {
    const got = await curlEcho([`traceparent: ${TRACEPARENT}`, 'tracestate: congo=t61rcWkgMzE', 'tracestate: rojo=00f067aa0ba902b7']);
    expect(got.tracestate).toBe('congo=t61rcWkgMzE, rojo=00f067aa0ba902b7');
  });

  it('invents no trace context for a request without one', async () => {
    const got = await curlEcho([]);
    expect(Object.keys(got).filter((k) => /trace|b3/.test(k))).toEqual([]);
  });
});
