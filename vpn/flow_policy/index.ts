// Policy applied to the live data path: the decision per flow (decide.ts),
// TCP flows by action (tcp.ts, tls_hook.ts, name_reader.ts), and hot reload
// (reload.ts).
export { FlowPolicy, type FlowPolicyOptions, type OpenedFlow, type PolicyEvent } from './decide';
export { TcpPolicy, type TcpPolicyDeps } from './tcp';
export { tlsHook } from './tls_hook';
export { PolicyReloader, RELOAD_DEBOUNCE_MS, type PolicyReloadStatus, type PolicyReloaderOptions } from './reload';
