/**
 * The transport the conformance suite reaches meshgate over: `http` (the plain listener, default) or
 * `https` (the TLS listener, HTTP/1.1 over TLS), chosen by MESHGATE_CONFORMANCE_TRANSPORT. The same
 * cases and assertions run over either; a raw-socket client writes the same bytes inside TLS.
 * HTTP/2 cannot carry hand-written HTTP/1.1 bytes: the h2-*.test.ts files run the same cases over it
 * with HTTP/2 clients (node:http2, curl --http2, nghttp, lib/h2-raw.ts) against the TLS listener
 * (startConformancePeer `tls: true`), whatever this variable says.
 */
export type Transport = 'http' | 'https';

export const TRANSPORT: Transport = process.env.MESHGATE_CONFORMANCE_TRANSPORT === 'https' ? 'https' : 'http';

/** Where a raw client connects: a port, over TLS when `tls` is given. */
export interface Target {
  readonly port: number;
  readonly tls?: { readonly ca: string; readonly servername: string };
}
