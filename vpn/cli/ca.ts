// `sightline ca ...`: the deployment's own inspection CA. Created on first
// start if missing; never shipped, never derived from anything in the code.
import { Command, Option } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { CaError, exportCa, importCa, initCa, loadCa, type CaExportFormat, type CaInfo } from '../../mitm';
import { resolveDataDir } from '../config';
import { scrubEnvironment } from '../process';

/**
 * The CA key passphrase: the first line of --passphrase-file, else
 * SIGHTLINE_CA_PASSPHRASE. The variable is deleted from the environment once
 * read, so child processes never inherit it, and its bytes in the process's
 * original environment are wiped, so /proc/PID/environ of a running
 * concentrator no longer shows it.
 */
export function caPassphrase(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.SIGHTLINE_CA_PASSPHRASE;
  delete env.SIGHTLINE_CA_PASSPHRASE;
  if (fromEnv !== undefined && env === process.env) scrubEnvironment('SIGHTLINE_CA_PASSPHRASE');
  if (file !== undefined) return secretFromFile(file, '--passphrase-file');
  return fromEnv || undefined;
}

/** A secret kept in a file (first line, without its line ending): never on the command line, where ps and shell history show it. */
export function secretFromFile(file: string, option: string): string {
  return readInput(file, option).split('\n')[0].replace(/\r$/, '');
}

/** A file named by an option, or an error naming the option, the file and why (not a bare ENOENT). */
function readInput(file: string, option: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CaError(`cannot read ${option} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function describe(info: CaInfo): string {
  return [
    `subject:     ${info.subject}`,
    `fingerprint: SHA-256 ${info.fingerprint}`,
    `valid:       ${info.notBefore.toISOString()} to ${info.notAfter.toISOString()}`,
    `certificate: ${info.certPath}`,
    `key:         ${info.keyPath} (mode 0600${info.keyEncrypted ? ', encrypted' : ''})`,
    '',
  ].join('\n');
}

export function caCommand(): Command {
  const ca = new Command('ca').description("the deployment's TLS inspection CA");
  const dataDirOf = (cmd: Command) => resolveDataDir(cmd.optsWithGlobals<{ dataDir?: string }>().dataDir);

  ca.command('init')
    .description('create a new CA unique to this deployment (and the separate untrusted CA)')
    .option('--force', 'replace an existing CA (every device must then trust the new one)')
    .option('--organization <name>', 'O= in the CA subject')
    .option('--passphrase-file <file>', 'encrypt the CA key with the passphrase in this file (or env SIGHTLINE_CA_PASSPHRASE)')
    .addOption(new Option('--key-type <type>', 'CA key type').choices(['ecdsa-p256', 'rsa-3072']).default('ecdsa-p256'))
    .action((opts: { force?: boolean; organization?: string; passphraseFile?: string; keyType: 'ecdsa-p256' | 'rsa-3072' }, cmd: Command) => {
      const info = initCa(dataDirOf(cmd), { force: opts.force, organization: opts.organization, passphrase: caPassphrase(opts.passphraseFile), keyType: opts.keyType });
      process.stdout.write(`created a new inspection CA\n${describe(info)}Distribute it to devices: sightline ca export --format pem|der|p12\n`);
    });

  ca.command('import')
    .description('use an existing enterprise intermediate CA (certificate + key) instead of a generated one')
    .requiredOption('--cert <file>', 'PEM certificate of the intermediate (optionally followed by its chain)')
    .requiredOption('--key <file>', 'PEM private key of the intermediate')
    .option('--force', 'replace an existing CA')
    .option('--passphrase-file <file>', 'passphrase of the key (or env SIGHTLINE_CA_PASSPHRASE)')
    .action((opts: { cert: string; key: string; force?: boolean; passphraseFile?: string }, cmd: Command) => {
      const info = importCa(dataDirOf(cmd), {
        certPem: readInput(opts.cert, '--cert'),
        keyPem: readInput(opts.key, '--key'),
        passphrase: caPassphrase(opts.passphraseFile),
        force: opts.force,
      });
      process.stdout.write(`imported the inspection CA\n${describe(info)}`);
    });

  ca.command('export')
    .description('write the CA certificate (never the key) for devices to trust')
    .addOption(new Option('--format <format>', 'pem, der or p12').choices(['pem', 'der', 'p12']).default('pem'))
    .option('--out <file>', 'write to a file instead of stdout')
    .addOption(new Option('--p12-password-file <file>', 'password of the PKCS#12 file: the first line of this file (default empty)').conflicts('p12Password'))
    .addOption(new Option('--p12-password <password>', 'the same on the command line (visible in ps and shell history: prefer --p12-password-file)').conflicts('p12PasswordFile'))
    .action((opts: { format: CaExportFormat; out?: string; p12Password?: string; p12PasswordFile?: string }, cmd: Command) => {
      const p12Password = opts.p12PasswordFile !== undefined ? secretFromFile(opts.p12PasswordFile, '--p12-password-file') : opts.p12Password;
      const data = exportCa(dataDirOf(cmd), opts.format, { p12Password });
      if (opts.out) {
        writeFileSync(opts.out, data);
        process.stderr.write(`wrote ${opts.out}\n`);
      } else if (opts.format !== 'pem' && process.stdout.isTTY) {
        throw new CaError(`refusing to write binary ${opts.format.toUpperCase()} to a terminal: use --out FILE or redirect stdout`);
      } else {
        process.stdout.write(data);
      }
    });

  ca.command('show')
    .description('print the CA subject, fingerprint and validity')
    .option('--passphrase-file <file>', 'passphrase of the CA key (or env SIGHTLINE_CA_PASSPHRASE)')
    .action((opts: { passphraseFile?: string }, cmd: Command) => {
      const loaded = loadCa(dataDirOf(cmd), { passphrase: caPassphrase(opts.passphraseFile) });
      process.stdout.write(`subject:     ${loaded.x509.subject.replace(/\n/g, ', ')}\nfingerprint: SHA-256 ${loaded.fingerprint}\nvalid:       ${loaded.x509.validFrom} to ${loaded.x509.validTo}\n`);
    });

  return ca;
}
