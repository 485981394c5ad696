/**
 * Binds a server and resolves with the port it got (the one asked for, or the kernel's pick for 0);
 * a bind error (EADDRINUSE, EACCES) rejects instead of reaching the server's 'error' listeners.
 * The one copy for the data-plane, TLS and admin listeners.
 */
import type { Server } from 'node:net';

export function listenOn(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** `host:port` or `[v6]:port` of the config (already validated by the schema) as host and port. */
export function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  let host = s.slice(0, i);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return [host, Number(s.slice(i + 1))];
}
