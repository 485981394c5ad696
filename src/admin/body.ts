/**
 * Admin request bodies: JSON, UTF-8, at most node.admin.maxBodySize bytes.
 *
 * An over-limit body is answered 413 the moment it crosses the limit, without buffering past it; the
 * rest is read and thrown away (lingering, as NGINX's lingering_close does) so the client sees the 413
 * instead of a connection reset — closing a socket with unread input makes the kernel send RST, which
 * destroys the answer in flight. The linger is bounded in time and bytes; past either the socket is cut.
 */
import type { IncomingMessage } from 'node:http';
import { AdminError, badRequest } from './errors.js';

/** How long, and how much, an over-limit body is drained after its 413 before the socket is cut. */
const LINGER_MS = 5_000;
const LINGER_BYTES = 64 * 1024 * 1024;

const tooLarge = (max: number) => new AdminError(413, 'MG_ERR_ADMIN_BODY_TOO_LARGE', `request body over ${max} bytes`);

/** Drains the rest of a refused body in the background, cutting it off past LINGER_MS or LINGER_BYTES. */
export function linger(req: IncomingMessage): void {
  if (req.complete || (req as { lingering?: boolean }).lingering) return;
  (req as { lingering?: boolean }).lingering = true;
  let drained = 0;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, LINGER_MS);
  timer.unref();
  req.removeAllListeners('data');
  req.on('data', (c: Buffer) => {
    drained += c.length;
    if (drained > LINGER_BYTES) cut();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads a JSON body, refusing more than `max` bytes (413) without buffering past it. */
export function readJson(req: IncomingMessage, max: number, optional = false): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) {
      linger(req);
      reject(tooLarge(max));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > max) {
        refused = true;
        chunks.length = 0;
        linger(req);
        reject(tooLarge(max));
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (refused) return;
      let text: string;
      try {
        text = utf8.decode(Buffer.concat(chunks)).trim();
      } catch {
        reject(badRequest('the body is not valid UTF-8'));
        return;
      }
      if (text === '') return optional ? resolve({}) : reject(badRequest('a JSON body is required'));
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(badRequest(err instanceof RangeError ? 'the body is nested too deeply' : 'the body is not valid JSON'));
      }
    });
  });
}
