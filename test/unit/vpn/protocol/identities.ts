// Two static identities and a preshared key for handshake-level tests.
import { PrivateKey } from '../../../../vpn/protocol/crypto';

const initPriv = PrivateKey.generate();
const respPriv = PrivateKey.generate();
export const initiator = { privateKey: initPriv, publicKey: initPriv.publicKey() };
export const responder = { privateKey: respPriv, publicKey: respPriv.publicKey() };
export const psk = Buffer.alloc(32, 0x5a);
export const WALL_MS = Date.UTC(2026, 0, 1);
