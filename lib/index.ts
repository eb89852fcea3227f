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
