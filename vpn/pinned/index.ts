// Pinned-client hosts: the admin's decisions (pinned-admin.json, written by
// the CLI) and the running concentrator's sync of them with the learned pins.
export {
  ApprovedPins, PINNED_ADMIN_FILE, PINNED_FILE, PinnedAdminError, approvePin, emptyPinnedAdmin, normalizePinHost,
  pinnedAdminPath, readPinnedAdmin, removePin, writePinnedAdmin, type PinDecision, type PinnedAdmin,
} from './admin';
export { PINNED_SYNC_MS, PinnedSync } from './sync';
