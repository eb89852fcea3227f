import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHealthChecks } from '../../../lib/cli/daemon.js';

/** Runs one built check the way HealthMonitor does: true, or the failure's message. */
async function run(check: ReturnType<typeof buildHealthChecks>[number], timeoutMs = 2000): Promise<true | string> {
  try {
    const r = await check.check(AbortSignal.timeout(timeoutMs));
    return r === false ? 'returned false' : true;
  } catch (e) {
    return (e as Error).message;
  }
}

describe('health checks from the config file (loopback only)', () => {
  let server: http.Server;
  let port = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => res.writeHead(req.url === '/ok' ? 200 : 503).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('command: exit status 0 is healthy, anything else names the status', async () => {
    const [ok, bad] = buildHealthChecks([{ name: 'ok', command: 'true' }, { name: 'bad', command: 'exit 3' }]);
    expect(await run(ok!)).toBe(true);
    expect(await run(bad!)).toBe('exit status 3');
  });

  it('command: a check that runs past its timeout is killed and fails', async () => {
    const [slow] = buildHealthChecks([{ name: 'slow', command: 'sleep 5' }]);
    const t0 = Date.now();
    expect(await run(slow!, 100)).not.toBe(true);
    expect(Date.now() - t0).toBeLessThan(4000); // killed, not waited for
  });

  it('tcp: a listening port is healthy, a closed one fails', async () => {
    const [open, closed] = buildHealthChecks([
      { name: 'open', tcp: { host: '127.0.0.1', port } },
      { name: 'closed', tcp: { host: '127.0.0.1', port: 1 } },
    ]);
    expect(await run(open!)).toBe(true);
    expect(await run(closed!)).toMatch(/ECONNREFUSED/);
  });

  it('http: 2xx is healthy, other statuses name the status', async () => {
    const [ok, bad] = buildHealthChecks([
      { name: 'ok', http: `http://127.0.0.1:${port}/ok` },
      { name: 'bad', http: `http://127.0.0.1:${port}/broken` },
    ]);
    expect(await run(ok!)).toBe(true);
    expect(await run(bad!)).toBe('HTTP 503');
  });
});
