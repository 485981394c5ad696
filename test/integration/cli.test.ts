/**
 * The real `meshgate` binary (dist/src/main.js): --help exits 0 with the usage on stdout, an unknown
 * option exits 2 and is named (with "did you mean"), `meshgate check` prints the hint for a misspelt
 * key and service, and the container's bundled config (deploy/container/config.yaml) passes `check`.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/meshgate.js';

const MAIN = new URL('../../dist/src/main.js', import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('meshgate command line', () => {
  it('--help exits 0 with the usage', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: meshgate --config <file>/);
    expect(r.stdout).toContain('meshgate check <file>');
  });

  it('an unknown option exits 2 and is named', async () => {
    const r = await run(['--confg', 'x.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('meshgate: unknown option "--confg"; did you mean "--config"?');
  });

  it('check prints did-you-mean for a misspelt key and service name', async () => {
    const file = join(tempDir(), 'c.yaml');
    writeFileSync(file, 'node: { id: a, listen: 127.0.0.1:1 }\nroutes: [{ service: wbe }]\nservices:\n  web:\n    helthCheck: {}\n    upstreams: [{ id: a, url: http://127.0.0.1:2 }]\n');
    const r = await run(['check', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:5:5: unknown key "helthCheck" in services.web; did you mean "healthCheck"?`);
    expect(r.stderr).toContain('route names unknown service "wbe"; did you mean "web"?');
  });

  it('the container config passes check with an admin token, and names the missing token without one', async () => {
    const file = new URL('../../deploy/container/config.yaml', import.meta.url).pathname;
    const r = await run(['check', file], { MESHGATE_ADMIN_TOKEN: 't0ken' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const missing = await run(['check', file], { MESHGATE_ADMIN_TOKEN: '' });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('node.admin.token is not set');
  });
});
