// Removes compiled files whose TypeScript source is gone. tsc never deletes
// what it emitted before, and Node resolves require('./dns') to a stale
// dist/vpn/dns.js ahead of the dist/vpn/dns/index.js that replaced it, so a
// checkout rebuilt after a file became a folder would run the old code.
// Run after tsc: `node dist/scripts/prune_dist.js` (npm run build does).
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const EMITTED = /\.js(\.map)?$/;

/** Deletes dist/**.js(.map) without a matching .ts under `root`; returns what it removed (relative to root). */
export function pruneDist(root: string): string[] {
  const dist = join(root, 'dist');
  const removed: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      if (!EMITTED.test(name)) continue;
      const source = join(root, relative(dist, path).replace(EMITTED, '.ts'));
      if (existsSync(source)) continue;
      rmSync(path, { force: true });
      removed.push(relative(root, path));
    }
  };
  if (existsSync(dist)) walk(dist);
  return removed;
}

if (require.main === module) {
  const removed = pruneDist(join(__dirname, '..', '..'));
  if (removed.length > 0) process.stdout.write(`removed ${removed.length} compiled files whose source is gone\n`);
}
