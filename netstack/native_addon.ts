// Loads one of our node-gyp addons (binding.gyp at the repository root) from
// build/Release, both from the sources (ts-jest) and from dist/ (the built
// CLI). A missing addon is a reason string, never an exception, so what does
// not need it (socket mode, Node's dgram fallback) keeps working.
import { join } from 'node:path';

const SEARCH = [join(__dirname, '..', 'build', 'Release'), join(__dirname, '..', '..', 'build', 'Release')];

/** The addon's exports, or why it could not be loaded. `purpose` words the reason ("batched UDP I/O"). */
export function loadNativeAddon<T>(file: string, purpose: string, dirs: readonly string[] = SEARCH): T | string {
  if (process.platform !== 'linux') return `${purpose} needs Linux (this is ${process.platform})`;
  const errors: string[] = [];
  for (const dir of dirs) {
    const mod = { exports: {} as T };
    try {
      process.dlopen(mod, join(dir, file));
      return mod.exports;
    } catch (err) {
      errors.push((err as Error).message.split('\n')[0]);
    }
  }
  return `${file} not loadable (run \`npm install\` to build it with node-gyp): ${errors.join('; ')}`;
}
