/**
 * Prometheus text exposition (format 0.0.4) of a node's state, served over
 * HTTP at /metrics. Counters are kept here from the node's events; gauges are
 * read from its status at scrape time.
 */
import http from 'node:http';
import type { VipaNode } from '../takeover/node.js';
import type { GroupState } from '../takeover/engine.js';

const STATES: GroupState[] = ['init', 'backup', 'active', 'verifying', 'draining', 'fault', 'disabled', 'stopped'];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Collects counters from a node's events and renders everything as Prometheus text. */
export class NodeMetrics {
  private readonly node: VipaNode;
  private readonly transitions = new Map<string, { labels: Record<string, string>; value: number }>();
  private readonly peerDowns = new Map<string, number>();
  private announcements = 0;
  private splitBrains = 0;
  private lateTimers = 0;

  constructor(node: VipaNode) {
    this.node = node;
    node.on('transition', (t) => {
      const l = { group: t.name, from: t.from, to: t.to, reason: t.reason };
      const key = JSON.stringify(l);
      const entry = this.transitions.get(key) ?? { labels: l, value: 0 };
      entry.value++;
      this.transitions.set(key, entry);
    });
    node.on('peer-down', (e) => this.peerDowns.set(e.peer, (this.peerDowns.get(e.peer) ?? 0) + 1));
    node.on('announce', () => this.announcements++);
    node.on('split-brain', () => this.splitBrains++);
    node.on('late-timer', () => this.lateTimers++);
  }

  /** The current metrics as Prometheus text. */
  render(): string {
    const s = this.node.status();
    const out: string[] = [];
    const family = (name: string, type: 'gauge' | 'counter', help: string, rows: [Record<string, string>, number][]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [l, v] of rows) out.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`);
    };
    family('vipa_group_state', 'gauge', 'Per group and state: 1 for the state the group is in on this node.', s.groups.flatMap((g) => STATES.map((st) => [{ group: g.name, state: st }, g.state === st ? 1 : 0] as [Record<string, string>, number])));
    family('vipa_group_held', 'gauge', '1 when this node holds the group.', s.groups.map((g) => [{ group: g.name }, g.holder === s.node ? 1 : 0]));
    family('vipa_transitions_total', 'counter', 'State transitions with their reason.', [...this.transitions.values()].map((t) => [t.labels, t.value]));
    family('vipa_peer_up', 'gauge', '1 while a peer is considered alive.', s.peers.map((p) => [{ peer: p.id }, p.alive ? 1 : 0]));
    family('vipa_peer_down_total', 'counter', 'Times a peer was declared down (missed heartbeats, leave, unreachable).', s.peers.map((p) => [{ peer: p.id }, this.peerDowns.get(p.id) ?? 0]));
    family('vipa_peer_config_match', 'gauge', '0 when a peer runs a different cluster config.', s.peers.map((p) => [{ peer: p.id }, p.digestMatches ? 1 : 0]));
    family('vipa_heartbeats_received_total', 'counter', 'Heartbeat mesh datagrams by outcome (accepted, or the reason they were dropped: auth failures, replays, malformed).', Object.entries(s.mesh).map(([k, v]) => [{ outcome: k }, v]));
    family('vipa_announcements_total', 'counter', 'Address announcements started (each a burst of gratuitous ARP / unsolicited NA).', [[{}, this.announcements]]);
    family('vipa_split_brain_total', 'counter', 'Split-brain resolutions seen.', [[{}, this.splitBrains]]);
    family('vipa_late_timers_total', 'counter', 'Times this process found itself frozen or starved and re-verified.', [[{}, this.lateTimers]]);
    family('vipa_health_check_ok', 'gauge', '1 while a health check passes.', s.checks.map((c) => [{ check: c.name }, c.healthy ? 1 : 0]));
    return `${out.join('\n')}\n`;
  }

  /** Serves /metrics on host:port. */
  listen(host: string, port: number): Promise<http.Server> {
    const server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found: try /metrics\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(this.render());
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}
