// Shared by the policy tests: a policy from YAML text, and queries from text.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpAddress } from '../../../netstack/wire';
import { compilePolicy, type FlowProtocol, type FlowQuery, type Policy } from '../../../policy';
import { parseConfigText } from '../../../vpn/config';

/** A temporary folder for config and category files, removed by cleanup(). */
export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'sightline-policy-'));

  write(name: string, text: string): string {
    const file = join(this.path, name);
    writeFileSync(file, text);
    return file;
  }

  cleanup(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Validates YAML as the loader does (file named in the temp dir) and compiles it. */
export function policyFrom(yaml: string, dir?: TempDir): Policy {
  const file = dir ? join(dir.path, 'sightline.yaml') : 'sightline.yaml';
  return compilePolicy(parseConfigText(yaml, file));
}

export function query(user: string, dst: string, dstPort = 443, host: string | null = null, protocol: FlowProtocol = 'tcp'): FlowQuery {
  return { user, protocol, dst: IpAddress.parse(dst).bytes, dstPort, host };
}

/** The rule id that decides the query. */
export function ruleFor(p: Policy, q: FlowQuery): string {
  return p.decide(q).rule;
}
