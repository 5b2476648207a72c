// HTTP services of the concentrator: the employee portal inside the tunnel,
// and /metrics and /healthz on admin.listen.
export { HttpServices, type ServiceHost, type ServicesOptions } from './services';
export { PORTAL_PORT } from './portal';
export { createMetrics, type MetricsSource } from './metrics';
export { decisionOf, RecentDecisions, type Decision, type Action } from './decisions';
