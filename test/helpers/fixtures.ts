/** Loads committed test fixtures. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A hex fixture from test/fixtures/<dir>/<name>.hex as bytes (whitespace and # comments ignored). */
export function hexFixture(dir: string, name: string): Buffer {
  const text = readFileSync(join(__dirname, '../fixtures', dir, `${name}.hex`), 'utf8');
  return Buffer.from(text.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
}

/** Real kernel rtnetlink replies captured by scripts/capture-netlink-fixtures.cjs. */
export function netlinkFixture(name: string): Buffer {
  return hexFixture('netlink', name);
}
