// The one logger factory: JSON lines through pino, secrets redacted by path.
import pino, { type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = ['privateKey', 'presharedKey', '*.privateKey', '*.presharedKey', 'headers.authorization', 'headers.cookie', 'password', '*.password'];

export function createLogger(level: string, destination: pino.DestinationStream | number = 1): Logger {
  return pino(
    { level, base: { svc: 'sightline' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination,
  );
}
