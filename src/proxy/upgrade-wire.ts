/**
 * The bytes meshgate writes to a client socket on the Upgrade path, where node:http has already
 * handed the raw socket over (there is no ServerResponse): its own short answers, the relayed 101,
 * and a relayed non-101 answer with its body.
 *
 * Invariants:
 * - Nothing is written to a socket that is no longer writable (the client may be gone at any moment:
 *   issue 12's crash was a write to such a socket with no 'error' listener).
 * - Every answer but a 101 ends the connection (`Connection: close`): after an Upgrade request the
 *   socket is outside node:http's parser, so it cannot carry a second request.
 * - A relayed body without Content-Length is re-framed as chunked, not close-delimited, so a client
 *   can tell a body cut short by the upstream (no last chunk) from a complete one (RFC 9112 §6.3).
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

function head(status: number, headers: readonly string[]): string {
  let out = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${out}\r\n`;
}

export function isWritable(socket: Duplex): boolean {
  return !socket.destroyed && socket.writable;
}

/** meshgate's own answer (the HTTP path's writeLocal, for a raw socket), then close; `extra`: more
 *  header pairs (a redirect's Location). */
export function writeLocalRaw(socket: Duplex, status: number, reason: string, text: string, requestId: string, extra: readonly string[] = []): void {
  if (!isWritable(socket)) {
    socket.destroy();
    return;
  }
  const body = `${status} ${text}\n`;
  const headers = [
    'content-type', 'text/plain; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    'x-meshgate-reason', reason,
    'x-request-id', requestId,
    'cache-control', 'no-store',
    'connection', 'close',
    ...extra,
  ];
  socket.end(head(status, headers) + body);
}

/** The upstream's 101, with its end-to-end headers (already filtered) and the upgrade pair restored. */
export function write101(socket: Duplex, headers: readonly string[], upgrade: string): boolean {
  if (!isWritable(socket)) return false;
  socket.write(head(101, [...headers, 'connection', 'Upgrade', 'upgrade', upgrade]));
  return true;
}

export type RelayOutcome = 'complete' | 'client-gone' | 'upstream-cut';

/**
 * Relays a non-101 answer: `headers` already filtered (hop-by-hop dropped), body streamed with
 * backpressure. `onDone` is called once, with whether the whole body reached the client's socket.
 */
export function relayResponse(socket: Duplex, res: IncomingMessage, headers: readonly string[], isHead: boolean, onDone: (outcome: RelayOutcome) => void): void {
  const sized = res.headers['content-length'] !== undefined;
  const status = res.statusCode ?? 502;
  const bodyless = isHead || status === 204 || status === 304;
  const chunked = !sized && !bodyless;
  let finished = false;
  const done = (outcome: RelayOutcome): void => {
    if (finished) return;
    finished = true;
    res.off('data', onData);
    if (outcome !== 'complete') {
      res.destroy();
      socket.destroy();
    }
    onDone(outcome);
  };
  const onData = (chunk: Buffer): void => {
    if (!isWritable(socket)) return done('client-gone');
    let ok: boolean;
    if (chunked) {
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      ok = socket.write('\r\n');
    } else ok = socket.write(chunk);
    if (!ok) {
      res.pause();
      socket.once('drain', () => res.resume());
    }
  };
  if (!isWritable(socket)) return done('client-gone');
  socket.write(head(status, [...headers, ...(chunked ? ['transfer-encoding', 'chunked'] : []), 'connection', 'close']));
  res.on('data', onData);
  res.once('end', () => {
    if (!isWritable(socket)) return done('client-gone');
    socket.end(chunked ? '0\r\n\r\n' : undefined);
    done('complete');
  });
  // Cut mid-body (the upstream reset): no last chunk, so the client sees the truncation.
  res.once('error', () => done('upstream-cut'));
  res.once('aborted', () => done('upstream-cut'));
  socket.once('close', () => done('client-gone'));
}
