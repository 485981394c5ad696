/**
 * Route matching: first match wins (DESIGN.md §2). Pure.
 *
 * Host match is exact and case-insensitive, ignoring the port (RFC 9110 §4.2.3: hosts are
 * case-insensitive); a leading `*.` matches any subdomain. Path match is a plain string prefix, as
 * Envoy's `prefix` (so `/v1` also matches `/v10`; write `/v1/` to mean the segment).
 */

export interface RouteRule {
  readonly host?: string | undefined;
  readonly pathPrefix: string;
  readonly service: string;
}

interface CompiledRoute {
  readonly exactHost: string | undefined;
  readonly suffixHost: string | undefined;
  readonly pathPrefix: string;
  readonly service: string;
}

export class RouteMatcher {
  private readonly routes: readonly CompiledRoute[];

  constructor(rules: readonly RouteRule[]) {
    this.routes = rules.map((r) => {
      const h = r.host?.toLowerCase();
      return {
        exactHost: h && !h.startsWith('*.') ? h : undefined,
        suffixHost: h?.startsWith('*.') ? h.slice(1) : undefined,
        pathPrefix: r.pathPrefix,
        service: r.service,
      };
    });
  }

  /** The service for a request, or undefined when no route matches. */
  match(hostHeader: string | undefined, path: string): string | undefined {
    const host = hostHeader === undefined ? '' : stripPort(hostHeader).toLowerCase();
    for (const r of this.routes) {
      if (r.exactHost !== undefined && r.exactHost !== host) continue;
      if (r.suffixHost !== undefined && !(host.endsWith(r.suffixHost) && host.length > r.suffixHost.length)) continue;
      if (path.startsWith(r.pathPrefix)) return r.service;
    }
    return undefined;
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
