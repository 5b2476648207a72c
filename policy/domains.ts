// Domain names as the policy sees them: label-wise suffixes, so `example.com`
// covers `www.example.com` but never `notexample.com`; lowercase; one trailing
// dot tolerated (the root label, RFC 1034 §3.1); IDNs as A-labels, which is
// what SNI carries (RFC 6066 §3).
import { domainToASCII } from 'node:url';

const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const NAME_RE = new RegExp(`^(?:${LABEL}\\.)*${LABEL}$`);
const NUMERIC_TLD_RE = /(?:^|\.)\d+$/;
// eslint-disable-next-line no-control-regex
const NON_ASCII_RE = /[^\x00-\x7f]/;

/**
 * A domain from the config (rules' hosts, category files, CLI) in its
 * canonical form, or null when it is not a host name. A numeric last label
 * is refused: that is an IP address, which `dst` matches, not a name.
 */
export function normalizeDomain(text: string): string | null {
  let s = text.trim();
  if (NON_ASCII_RE.test(s)) s = domainToASCII(s);
  else s = s.toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.length === 0 || s.length > 253 || !NAME_RE.test(s) || NUMERIC_TLD_RE.test(s)) return null;
  return s;
}

export interface HostPattern {
  /** The domain itself, or what the wildcard is under. */
  domain: string;
  /** "*.example.org": any name below example.org, at any depth, not example.org itself. */
  wildcard: boolean;
}

export function parseHostPattern(text: string): HostPattern | null {
  const t = text.trim();
  const wildcard = t.startsWith('*.');
  const domain = normalizeDomain(wildcard ? t.slice(2) : t);
  return domain === null ? null : { domain, wildcard };
}

/**
 * The name of a flow (SNI, or HTTP Host without its port) as looked up: no
 * validation on the packet path, a malformed name simply matches no domain.
 * An empty name is no name.
 */
export function queryHost(host: string | null): string | null {
  if (host === null || host.length === 0) return null;
  let h = host.toLowerCase();
  if (h.charCodeAt(h.length - 1) === 46 /* . */) h = h.slice(0, -1);
  return h.length === 0 ? null : h;
}

/**
 * Domains as a suffix trie stored flat: every node is the suffix string of
 * its domain ("com", "example.com", ...) mapped to an id, with its parent's
 * id. Lookups walk a name from its last label inwards and stop at the first
 * suffix not in the map, so the walk costs at most one map lookup per label.
 */
export class DomainTrie {
  /** Node 0 is the root (the empty suffix). */
  private readonly ids = new Map<string, number>([['', 0]]);
  private readonly parents: number[] = [-1];

  get size(): number {
    return this.parents.length;
  }

  /** Adds a canonical domain (see normalizeDomain) and its ancestors; returns its node. */
  add(domain: string): number {
    const existing = this.ids.get(domain);
    if (existing !== undefined) return existing;
    const dot = domain.indexOf('.');
    const parent = dot < 0 ? 0 : this.add(domain.slice(dot + 1));
    const id = this.parents.length;
    this.parents.push(parent);
    this.ids.set(domain, id);
    return id;
  }

  nodeOf(domain: string): number | undefined {
    return this.ids.get(domain);
  }

  parent(node: number): number {
    return this.parents[node];
  }

  /**
   * Where a query name (see queryHost) ends in the trie, as one number:
   * node * 2, plus 1 when the node is the whole name (not only a suffix of it).
   */
  locate(host: string): number {
    let node = 0;
    let pos = host.lastIndexOf('.');
    for (;;) {
      const id = this.ids.get(pos < 0 ? host : host.substring(pos + 1));
      if (id === undefined) return node * 2;
      node = id;
      if (pos < 0) return node * 2 + 1;
      pos = pos > 0 ? host.lastIndexOf('.', pos - 1) : -1;
    }
  }
}
