/**
 * `npm run demo` as a newcomer runs it: it completes, prints the outage the
 * client saw for each event, and leaves no namespace or process behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { skipKernelTests } from '../helpers/kernel.js';

/**
 * Processes still carrying `tag` in their environment: every process the demo
 * starts (daemons, reapers, namespace keepers, prober, responders) inherits
 * it, and a namespace lives only as long as a process in it (the demo makes
 * no bind mounts), so none left means no namespace left either.
 */
function survivors(tag: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`VIPA_DEMO_TAG=${tag}`)) continue;
      const state = /State:\s+(\S)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      if (state !== 'Z') found.push(`${pid} (${readlinkSync(`/proc/${pid}/ns/net`)}): ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

describe.skipIf(skipKernelTests())('npm run demo', () => {
  it('prints the outage per event and cleans up after itself', async () => {
    const tag = `${process.pid}-${Date.now()}`;
    const root = join(__dirname, '../..');
    const child = spawn('npm', ['run', '--silent', 'demo'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIPA_DEMO_TAG: tag } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, out).toBe(0);
    for (const event of ['holder a dies', 'b stops gracefully', 'home node a returns', 'vipa move']) {
      expect(out).toMatch(new RegExp(`${event}.*\\d+\\.\\d ms`));
    }
    expect(out).toMatch(/a → b/);
    expect(out).toMatch(/b → c/);
    expect(out).toMatch(/c → a/);
    // Nothing left: no process of the demo, hence none of its namespaces; the host untouched.
    await new Promise((r) => setTimeout(r, 300));
    expect(survivors(tag)).toEqual([]);
    expect(execFileSync('ip', ['-o', 'addr', 'show'], { encoding: 'utf8' })).not.toMatch(/198\.51\.100\./);
  }, 90_000);
});
