// The end-to-end headers of a message (RFC 9110 §7.6.1): drops Connection and the names it lists,
// plus the classic RFC 2616 §13.5.1 hop-by-hop set. Shared by the minimal undici floors.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const listed = headers.connection;
  const extra = typeof listed === 'string' ? listed.toLowerCase().split(',').map((s) => s.trim()) : [];
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || extra.includes(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** An upstream that failed: 502 if nothing was sent yet, else the response is cut (the floors' only error path). */
export function badGateway(res: ServerResponse | Http2ServerResponse): void {
  if (!res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway\n');
  } else {
    res.destroy();
  }
}
