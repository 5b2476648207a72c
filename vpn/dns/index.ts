// DNS for employees: the forwarder (sockets and timers) around the
// sans-IO query table, and the DNS message helpers the wiring needs.
export {
  DnsForwarder, parseDnsServers, systemResolvers, DEFAULT_DNS_TIMEOUT_MS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_USER,
  type DnsBudget, type DnsCounter, type DnsCounters, type DnsForwarderOptions, type DnsOutcome, type DnsServer,
} from './forwarder';
export { isDnsQuery, maxUdpAnswerSize } from './message';
export { DNS_PORT, dnsOverTcp, dnsOverUdp } from './service';
