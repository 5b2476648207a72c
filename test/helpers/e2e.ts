// Gate for end-to-end tests: they need root, namespaces and wireguard-go.
// Without them a test says why and skips; under CI=true that is a failure.
import { missingE2EPrerequisites } from '../../scripts/lab/netns';

export function describeE2E(name: string, tools: string[], body: () => void): void {
  const missing = missingE2EPrerequisites(tools);
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      test('prerequisites are present', () => {
        throw new Error(`end-to-end prerequisites missing under CI: ${missing.join(', ')}`);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": missing ${missing.join(', ')} (run as root with these installed, or bash .ci/run)`);
  describe.skip(name, body);
}
