// Domain names as the policy sees them: label-wise suffixes, so `example.com`
// covers `www.example.com` but never `notexample.com`; lowercase; one trailing
// dot tolerated (the root label, RFC 1034 §3.1); IDNs as A-labels, which is
// what SNI carries (RFC 6066 §3).
import { domainToASCII } from 'node:url';

const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const NAME_RE = new RegExp(`^(?:${LABEL}\\.)*${LABEL}$`);
const NUMERIC_TLD_RE = /(?:^|\.)\d+$/;
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
 * An empty name is no name. Lowercases only when needed (SNI usually is).
 */
export function queryHost(host: string | null): string | null {
  if (host === null) return null;
  let end = host.length;
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
  if (end === 0) return null;
  for (let i = 0; i < end; i++) {
    const c = host.charCodeAt(i);
    if (c >= 65 && c <= 90) return host.slice(0, end).toLowerCase();
  }
  return end === host.length ? host : host.slice(0, end);
}

const EMPTY = -1;

/**
 * Domains as a suffix trie: node = one label under its parent ("com", then
 * "example" under it, ...). Children are found through one open-addressing
 * table keyed by (parent, label), hashed straight from the name's characters,
 * so a lookup allocates nothing: no label substrings, no split. It walks a
 * name from its last label inwards and stops at the first label not in the
 * trie: at most one probe sequence per label.
 */
export class DomainTrie {
  /** Node 0 is the root (the empty suffix). */
  private readonly parents: number[] = [-1];
  private readonly labels: string[] = [''];
  /** (hash, node) pairs, open addressing with linear probing. */
  private table = new Int32Array(2048).fill(EMPTY);

  get size(): number {
    return this.parents.length;
  }

  parent(node: number): number {
    return this.parents[node];
  }

  /** Adds a canonical domain (see normalizeDomain) and its ancestors; returns its node. */
  add(domain: string): number {
    let node = 0;
    let end = domain.length;
    for (;;) {
      const dot = domain.lastIndexOf('.', end - 1);
      const start = dot + 1;
      let child = this.child(node, domain, start, end);
      if (child === EMPTY) child = this.insert(node, domain.slice(start, end));
      node = child;
      if (dot < 0) return node;
      end = dot;
    }
  }

  nodeOf(domain: string): number | undefined {
    const key = this.locate(domain);
    return (key & 1) === 1 ? key >>> 1 : undefined;
  }

  /**
   * Where a query name (see queryHost) ends in the trie, as one number:
   * node * 2, plus 1 when the node is the whole name (not only a suffix of it).
   */
  locate(host: string): number {
    let node = 0;
    let end = host.length;
    for (;;) {
      const dot = end > 0 ? host.lastIndexOf('.', end - 1) : -1;
      const child = this.child(node, host, dot + 1, end);
      if (child === EMPTY) return node * 2;
      node = child;
      if (dot < 0) return node * 2 + 1;
      end = dot;
    }
  }

  private child(parent: number, s: string, start: number, end: number): number {
    const len = end - start;
    if (len <= 0) return EMPTY;
    const t = this.table;
    const mask = (t.length >>> 1) - 1;
    const h = hashLabel(parent, s, start, end) | 0;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const n = t[2 * i + 1];
      if (n === EMPTY) return EMPTY;
      // The stored hash, next to the node id, rules out almost every other
      // label without touching the node's own (cold) memory.
      if (t[2 * i] === h && this.parents[n] === parent && this.labels[n].length === len && s.startsWith(this.labels[n], start)) return n;
    }
  }

  private insert(parent: number, label: string): number {
    const id = this.parents.length;
    this.parents.push(parent);
    this.labels.push(label);
    // Keep the table at most half full: probes stay short.
    if (id * 4 >= this.table.length) this.rehash(this.table.length * 2);
    else this.place(id);
    return id;
  }

  private place(id: number): void {
    const t = this.table;
    const mask = (t.length >>> 1) - 1;
    const label = this.labels[id];
    const h = hashLabel(this.parents[id], label, 0, label.length) | 0;
    let i = h & mask;
    while (t[2 * i + 1] !== EMPTY) i = (i + 1) & mask;
    t[2 * i] = h;
    t[2 * i + 1] = id;
  }

  private rehash(size: number): void {
    this.table = new Int32Array(size).fill(EMPTY);
    for (let id = 1; id < this.parents.length; id++) this.place(id);
  }
}

/** FNV-1a over the label's UTF-16 units, seeded with the parent node. */
function hashLabel(parent: number, s: string, start: number, end: number): number {
  let h = Math.imul(parent ^ 0x811c9dc5, 0x01000193);
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 15)) >>> 0;
}
