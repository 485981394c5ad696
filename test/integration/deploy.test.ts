/**
 * The deployable package, validated as far as this machine allows: every YAML under deploy/ parses;
 * the container, compose and Kubernetes configs pass meshgate's own validation (with the environment
 * their manifests give them) and the generated JSON Schema; the pieces agree with each other (drain
 * below the stop grace, one volume per voter at cluster.dataDir, bootstrap ids = the peers the
 * manifests start); `docker compose config` and `systemd-analyze verify` run when they can (offline).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import Ajv from 'ajv';
import { parseConfigText } from '../../src/config/load.js';
import { substituteEnv } from '../../src/config/env.js';
import type { Config } from '../../src/config/schema.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const DEPLOY = join(ROOT, 'deploy');
const SCHEMA = JSON.parse(readFileSync(join(ROOT, 'docs/config.schema.json'), 'utf8')) as object;
const ENV = { MESHGATE_NODE_ID: 'meshgate-1', MESHGATE_ADMIN_TOKEN: 't0ken', MESHGATE_CLUSTER_SECRET: 'a-secret-of-at-least-16-chars' };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
}

function meshgateConfig(text: string, file: string, env: Record<string, string> = ENV): Config {
  const r = parseConfigText(text, file, env);
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.file}:${i.line}:${i.column}: ${i.message}`).join('\n'));
  return r.config;
}

/** What the JSON Schema says about a config (env references substituted first, as meshgate does). */
function schemaErrors(text: string, env: Record<string, string> = ENV): string[] {
  const ajv = new Ajv({ allErrors: true });
  // As meshgate does: ${NAME} inside string values, after YAML parsing.
  const sub = (v: unknown): unknown =>
    typeof v === 'string' ? substituteEnv(v, env).value : Array.isArray(v) ? v.map(sub) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sub(x)])) : v;
  const ok = ajv.validate(SCHEMA, sub(parse(text)));
  return ok ? [] : (ajv.errors ?? []).map((e) => `${e.dataPath} ${e.message}`);
}

const seconds = (s: string) => Number(/^(\d+)s$/.exec(s)![1]);

describe('deploy/ manifests', () => {
  it('every YAML file parses', () => {
    const yamls = files(DEPLOY).filter((f) => /\.ya?ml$/.test(f));
    expect(yamls.length).toBeGreaterThanOrEqual(6);
    for (const f of yamls) {
      for (const doc of parseAllDocuments(readFileSync(f, 'utf8'))) expect(doc.errors.map((e) => `${f}: ${e.message}`)).toEqual([]);
    }
  });

  it('the container config listens on 0.0.0.0 and drains inside docker stop\'s 10 s; the Dockerfile bundles it and declares the data volume', () => {
    const text = readFileSync(join(DEPLOY, 'container/config.yaml'), 'utf8');
    // Only the admin token is required from the environment (the admin listener is not loopback).
    const cfg = meshgateConfig(text, 'container/config.yaml', { MESHGATE_ADMIN_TOKEN: 't0ken' });
    expect(cfg.node.listen).toBe('0.0.0.0:8080');
    expect(cfg.node.drainTimeout).toBeLessThan(10_000);
    expect(schemaErrors(text, { MESHGATE_ADMIN_TOKEN: 't0ken' })).toEqual([]);
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain('COPY deploy/container/config.yaml /etc/meshgate/config.yaml');
    expect(dockerfile).toMatch(/^VOLUME \["\/var\/lib\/meshgate"\]$/m);
  });

  it('docker-compose: three peers with their own volume at dataDir, Redis, backends; drain below stop_grace_period', () => {
    const compose = parse(readFileSync(join(DEPLOY, 'docker-compose.yaml'), 'utf8'), { merge: true }) as {
      services: Record<string, { volumes?: string[]; environment?: Record<string, string>; stop_grace_period?: string; image?: string }>;
      volumes: Record<string, unknown>;
    };
    const peers = Object.keys(compose.services).filter((n) => n.startsWith('meshgate-'));
    expect(peers).toEqual(['meshgate-1', 'meshgate-2', 'meshgate-3']);
    expect(compose.services.redis?.image).toMatch(/^redis:/);
    expect(Object.keys(compose.services).filter((n) => n.startsWith('web-'))).toHaveLength(2);
    const text = readFileSync(join(DEPLOY, 'compose/meshgate.yaml'), 'utf8');
    expect(schemaErrors(text)).toEqual([]);
    const dataVolumes = new Set<string>();
    for (const id of peers) {
      const svc = compose.services[id]!;
      expect(svc.environment?.MESHGATE_NODE_ID).toBe(id);
      const cfg = meshgateConfig(text, 'compose/meshgate.yaml', { ...ENV, MESHGATE_NODE_ID: id });
      expect(cfg.cluster!.bootstrap.map((p) => p.id)).toEqual(peers);
      expect(cfg.cluster!.bootstrap.find((p) => p.id === id)!.address).toBe(`${id}:7946`);
      const data = svc.volumes!.find((v) => v.endsWith(`:${cfg.cluster!.dataDir}`));
      expect(data, `${id} has no volume at ${cfg.cluster!.dataDir}`).toBeDefined();
      dataVolumes.add(data!.split(':')[0]!);
      expect(compose.volumes).toHaveProperty(data!.split(':')[0]!);
      expect(cfg.node.drainTimeout).toBeLessThan(seconds(svc.stop_grace_period!) * 1000);
      expect(svc.volumes!.some((v) => v.startsWith('./compose/meshgate.yaml:/etc/meshgate/config.yaml'))).toBe(true);
    }
    expect(dataVolumes.size).toBe(3);
  });

  // The compose plugin (`docker compose`), else Debian's docker-compose 1.29 (.ci/run installs it):
  // both validate offline, interpolation and the Compose schema included.
  const compose = spawnSync('docker', ['compose', 'version']).status === 0 ? ['docker', 'compose'] : spawnSync('docker-compose', ['version']).status === 0 ? ['docker-compose'] : undefined;
  it.skipIf(compose === undefined)(`${compose?.join(' ') ?? 'docker compose'} config accepts the file, and refuses it without the secrets`, () => {
    const run = (env: Record<string, string>) => spawnSync(compose![0]!, [...compose!.slice(1), '-f', join(DEPLOY, 'docker-compose.yaml'), 'config', '--quiet'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env } });
    const r = run(ENV);
    expect(r.status, r.stderr).toBe(0);
    // The file insists on a cluster secret and an admin token instead of starting peers without them.
    const bare = run({});
    expect(bare.status).not.toBe(0);
    expect(bare.stderr).toMatch(/MESHGATE_CLUSTER_SECRET|MESHGATE_ADMIN_TOKEN/);
  });

  it('Kubernetes: a StatefulSet of three voters with stable ids, a volume each at dataDir, the headless Service the bootstrap names', () => {
    const docs = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes/meshgate.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown>; data?: Record<string, string> });
    const byKind = (k: string) => docs.filter((d) => d.kind === k);
    const sts = byKind('StatefulSet')[0]! as unknown as {
      spec: { serviceName: string; replicas: number; template: { spec: { terminationGracePeriodSeconds: number; containers: Array<{ env: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>; volumeMounts: Array<{ name: string; mountPath: string }> }> } }; volumeClaimTemplates: Array<{ metadata: { name: string } }> };
    };
    const headless = byKind('Service').find((s) => s.metadata.name === sts.spec.serviceName)!;
    expect(headless.spec.clusterIP).toBe('None');
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    expect(sts.spec.replicas).toBe(3);
    const container = sts.spec.template.spec.containers[0]!;
    expect(container.env.find((e) => e.name === 'MESHGATE_NODE_ID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    const text = byKind('ConfigMap')[0]!.data!['config.yaml']!;
    expect(schemaErrors(text)).toEqual([]);
    const ids = Array.from({ length: sts.spec.replicas }, (_, i) => `${'meshgate'}-${i}`);
    for (const id of ids) {
      const cfg = meshgateConfig(text, 'configmap config.yaml', { ...ENV, MESHGATE_NODE_ID: id });
      expect(cfg.cluster!.bootstrap.map((p) => p.id)).toEqual(ids);
      expect(cfg.cluster!.bootstrap.map((p) => p.address)).toEqual(ids.map((i) => `${i}.${sts.spec.serviceName}:7946`));
      const claim = sts.spec.volumeClaimTemplates[0]!.metadata.name;
      expect(container.volumeMounts.find((m) => m.name === claim)?.mountPath).toBe(cfg.cluster!.dataDir);
      expect(cfg.node.drainTimeout).toBeLessThan(sts.spec.template.spec.terminationGracePeriodSeconds * 1000);
    }
    expect(byKind('PodDisruptionBudget')[0]!.spec.maxUnavailable).toBe(1);
  });

  it('systemd: the stop timeout covers the default drain; systemd-analyze verify finds no error in the unit', () => {
    const unit = readFileSync(join(DEPLOY, 'systemd/meshgate.service'), 'utf8');
    expect(seconds(/^TimeoutStopSec=(\S+)$/m.exec(unit)![1]!)).toBeGreaterThan(30);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    const r = spawnSync('systemd-analyze', ['verify', join(DEPLOY, 'systemd/meshgate.service')], { encoding: 'utf8' });
    if (r.error) return; // not installed
    // Only problems of the unit itself count: the paths it names (/opt/meshgate, the meshgate user) do not exist here.
    const own = r.stderr.split('\n').filter((l) => l.includes('meshgate.service') && !/Command .* is not executable|No such file|not found/i.test(l));
    expect(own).toEqual([]);
  });

  it('the yaml-language-server $schema lines point at the committed schema', () => {
    for (const f of files(DEPLOY).filter((x) => /\.ya?ml$/.test(x))) {
      const m = /^# yaml-language-server: \$schema=(\S+)$/m.exec(readFileSync(f, 'utf8'));
      if (!m) continue;
      expect(resolve(dirname(f), m[1]!)).toBe(join(ROOT, 'docs/config.schema.json'));
    }
    expect(execFileSync('grep', ['-l', 'yaml-language-server', '-r', DEPLOY], { encoding: 'utf8' }).trim().split('\n').length).toBeGreaterThanOrEqual(2);
  });
});
