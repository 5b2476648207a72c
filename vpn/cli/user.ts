// `sightline user ...`: the people devices belong to. Disabling or removing a
// user ends all their tunnels within a second on a running concentrator.
import { Command } from 'commander';
import { addUser, listUsers, removeUser, setUserDisabled } from '../control';
import { plural, table, withDeployment } from './common';

export function userCommand(): Command {
  const user = new Command('user').description('manage users (each has one or more devices)');

  user
    .command('add <name>')
    .description('create a user (device add also creates a missing user)')
    .option('--email <email>', "the user's email address, for people reading lists and logs")
    .action((name: string, opts: { email?: string }, cmd: Command) =>
      withDeployment(cmd, (d) => {
        addUser(d.store, name, opts.email ?? null);
        process.stderr.write(`user "${name}" added. Add a device: sightline device add ${name}\n`);
      }),
    );

  user
    .command('list')
    .description('list users with their state and number of devices')
    .option('--json', 'JSON output')
    .action((opts: { json?: boolean }, cmd: Command) =>
      withDeployment(cmd, (d) => {
        const users = listUsers(d.store).map((u) => ({
          // `state` as the table prints it, beside the boolean: the same word as device list's state.
          name: u.name, email: u.email, state: u.disabled ? 'disabled' : 'enabled', disabled: u.disabled, devices: u.devices,
          createdAt: new Date(u.createdAt).toISOString(),
        }));
        if (opts.json) {
          process.stdout.write(JSON.stringify(users, null, 2) + '\n');
          return;
        }
        if (users.length === 0) {
          process.stdout.write('no users yet: sightline user add NAME, or sightline device add NAME\n');
          return;
        }
        process.stdout.write(table(['USER', 'EMAIL', 'STATE', 'DEVICES', 'CREATED'],
          users.map((u) => [u.name, u.email ?? '-', u.state, String(u.devices), u.createdAt])));
      }),
    );

  user
    .command('disable <name>')
    .description("refuse all the user's devices; a running concentrator ends their tunnels within a second")
    .action((name: string, _opts: unknown, cmd: Command) =>
      withDeployment(cmd, (d) => {
        const changed = setUserDisabled(d.store, name, true);
        process.stderr.write(changed
          ? `user "${name}" disabled: a running concentrator ends their tunnels within a second and refuses their handshakes\n`
          : `user "${name}" was already disabled\n`);
      }),
    );

  user
    .command('enable <name>')
    .description("accept the user's devices again (expired devices stay refused until renewed)")
    .action((name: string, _opts: unknown, cmd: Command) =>
      withDeployment(cmd, (d) => {
        const changed = setUserDisabled(d.store, name, false);
        process.stderr.write(changed ? `user "${name}" enabled\n` : `user "${name}" was already enabled\n`);
      }),
    );

  user
    .command('remove <name>')
    .description('remove the user, their devices and leases; a running concentrator ends their tunnels within a second')
    .action((name: string, _opts: unknown, cmd: Command) =>
      withDeployment(cmd, (d) => {
        const devices = removeUser(d.store, name);
        process.stderr.write(`user "${name}" removed with ${plural(devices, 'device')}; their tunnel addresses are free again\n`);
      }),
    );

  return user;
}
