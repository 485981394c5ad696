// Copies non-TypeScript assets (the dashboard page) next to the compiled output.
import { cpSync, existsSync, mkdirSync } from 'node:fs';
const pairs = [['src/dashboard/assets', 'dist/src/dashboard/assets']];
for (const [from, to] of pairs) {
  if (!existsSync(from)) continue;
  mkdirSync(to, { recursive: true });
  cpSync(from, to, { recursive: true });
}
