// What the employee portal says is inspected and what is not. One place: the
// policy engine fills `notDecrypted` from its exempt categories when it
// lands; until then these are the defaults DESIGN.md names (finance and
// health exempt by default).
import type { Config } from '../config';

export interface InspectionScope {
  /** TCP ports whose TLS traffic is decrypted and checked. */
  inspectedPorts: number[];
  /** Categories of sites never decrypted, in plain words. */
  notDecrypted: string[];
  /** Whether apps that pin their certificates are passed through once learned (tls.pinning.mode). */
  pinnedAppsBypassed: boolean;
}

export const DEFAULT_NOT_DECRYPTED = ['Finance and banking sites', 'Health and medical sites'];

export function inspectionScope(config: Config, notDecrypted: string[] = DEFAULT_NOT_DECRYPTED): InspectionScope {
  return { inspectedPorts: [...config.tls.inspectPorts], notDecrypted, pinnedAppsBypassed: config.tls.pinning.mode !== 'off' };
}
