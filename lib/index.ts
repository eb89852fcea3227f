/**
 * vipa: move virtual IP addresses between Linux hosts fast and safely.
 *
 * This entry point exports the rtnetlink engine (addresses, links, events),
 * the error model and the IP text helpers.
 */
export { VipaError, DecodeError, errnoName, type VipaErrorOptions } from './errors.js';
export { parseIp, formatIp, parseMac, formatMac, type IpFamily, type ParsedIp } from './ip.js';
export {
  Netlink,
  type NetlinkOptions,
  type AddressBatchItem,
  type AddressBatchResult,
  type PreparedAddrBatch,
  type PreparedAddrBatchOutcome,
} from './netlink/netlink.js';
export {
  VIPA_PROTO,
  type Address,
  type AddressFilter,
  type AddressFlags,
  type AddressOptions,
  type AddressScope,
  type AddressSpec,
  type AddressVerb,
  type LinkRef,
} from './netlink/address.js';
export { type Link, type LinkFlags, type OperState } from './netlink/link.js';
export {
  NetlinkMonitor,
  type NetlinkMonitorOptions,
  type NetlinkMonitorEvents,
  type NetlinkEvent,
  type LinkEvent,
  type AddressEvent,
  type ResyncEvent,
} from './netlink/monitor.js';
export { AddressReaper, type AddressReaperOptions } from './netlink/reaper.js';
export * from './packets/index.js';
export {
  VipaNode,
  type VipaNodeOptions,
  type VipaNodeEvents,
  type VipaNodeStatus,
  type AuthOptions,
  type DetectorOptions,
  type Logger,
  type NodeHandover,
} from './takeover/node.js';
export {
  validateCluster,
  ConfigError,
  HOME_PRIORITY,
  type ClusterConfig,
  type Cluster,
  type GroupConfig,
  type NodeConfig,
  type GivebackPolicy,
  type TimerConfig,
} from './takeover/config.js';
export { TakeoverEngine, type Effect, type EngineEvent, type GroupState, type PeerMessage } from './takeover/engine.js';
export { FixedTimeoutDetector, PhiAccrualDetector, type FailureDetector } from './takeover/detectors.js';
export { type HealthCheck } from './takeover/health.js';
export { Announcer, type AnnouncerOptions, type AnnounceSchedule } from './packets/announcer.js';
export { LinkSocket } from './packets/link-socket.js';
export {
  DEFAULT_ANNOUNCE_SCHEDULE,
  DEFAULT_PACING,
  PreparedAnnouncement,
  type AnnounceOptions,
  type AnnounceTarget,
  type AnnouncerPacing,
  type AnnouncerInterfaceStats,
  type ArpMode,
} from './packets/announcer.js';
export { type LinkFrame, type LinkSocketOptions, type LinkSocketStats } from './packets/link-socket.js';
export {
  ConflictDetector,
  DEFEND_INTERVAL_MS,
  probeConflict,
  type DefendPolicy,
  type ConflictAction,
  type ConflictEvent,
  type ConflictDetectorOptions,
  type ConflictDetectorEvents,
  type ProbeOptions,
  type ProbeResult,
} from './packets/conflict.js';
