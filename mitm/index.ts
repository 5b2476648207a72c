// Public surface of the TLS inspection engine.
export { CaError, caFingerprint, caPaths, ensureCa, importCa, initCa, loadCa, loadUntrustedCa } from './ca';
export type { CaInfo, CaKeyType, EnsuredCa, LoadedCa } from './ca';
export { exportCa } from './ca_export';
export type { CaExportFormat, CaExportOptions } from './ca_export';
export { LeafMinter, MintError } from './mint';
export type { MintedLeaf, UpstreamLeaf, UpstreamNames } from './mint';
export { ClientHelloReader, isGrease } from './client_hello';
export type { ClientHelloInfo, ClientHelloResult } from './client_hello';
