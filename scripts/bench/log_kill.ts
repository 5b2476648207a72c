// What a SIGKILL loses from the per-user logs: this process writes records
// the way a busy concentrator does (a batch per event-loop turn, RATE records
// a second over USERS users), then kills itself right after accepting record
// N, having first written N to stdout synchronously. The parent counts the
// complete records on disk.
// Usage: node log_kill.js DATA_DIR RATE SECONDS USERS
import { writeSync } from 'node:fs';
import { UserLog } from '../../vpn/logs';

const [dataDir, rateArg, secondsArg, usersArg] = process.argv.slice(2);
const rate = Number(rateArg);
const users = Number(usersArg);
const log = new UserLog({ dataDir });
const perTick = Math.max(1, Math.round(rate / 1000));
const killAfter = Math.round(rate * Number(secondsArg));
let accepted = 0;

setInterval(() => {
  for (let i = 0; i < perTick; i++) {
    log.write(`user${accepted % users}`, 'PEERKEY', 'flow', { proto: 'tcp', src: '10.77.0.2', srcPort: 40000 + (accepted % 20000), dst: '192.0.2.10', dstPort: 443, bytesUp: 1234, bytesDown: 56789, durationMs: 420, end: 'fin', retransmits: 0, rtoExpirations: 0, seq: accepted }, 'laptop');
    accepted++;
  }
  if (accepted >= killAfter) {
    writeSync(1, `${accepted}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}, 1);
