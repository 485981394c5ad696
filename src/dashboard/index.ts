/**
 * Serves the dashboard (DESIGN.md §8): one HTML page plus local assets, no CDN and no build step.
 * Assets are read once at start from src/dashboard/assets (copied next to the compiled code).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { extname } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

function assetsDir(): URL {
  // dist/src/dashboard/index.js → dist/src/dashboard/assets; src/dashboard/index.ts → src/dashboard/assets
  return new URL('./assets/', import.meta.url);
}

const assets = new Map<string, { type: string; body: Buffer }>();
try {
  for (const name of readdirSync(assetsDir())) {
    assets.set(name, { type: TYPES[extname(name)] ?? 'application/octet-stream', body: readFileSync(new URL(name, assetsDir())) });
  }
} catch {
  // No assets directory: the page below says so instead of failing the peer.
}

export function dashboardHtml(): string {
  return assets.get('index.html')?.body.toString('utf8') ?? '<!doctype html><title>meshgate</title><p>dashboard assets missing</p>';
}

export function dashboardAsset(name: string): { type: string; body: Buffer } | undefined {
  if (name === 'index.html') return undefined;
  return assets.get(name);
}
