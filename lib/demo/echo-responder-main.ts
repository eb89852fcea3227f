#!/usr/bin/env node
/**
 * CLI of the echo responder, run on every cluster host (usually inside the
 * host's namespace through nsenter):
 *
 *   node dist/demo/echo-responder-main.js --port 7777 --name a [--family 4|6|both]
 *
 * Prints `ready` on stdout once bound, then nothing; on exit prints its
 * counters as one JSON line on stderr. Ends on SIGTERM/SIGINT, on stdin EOF
 * when stdin is a pipe, or when its parent dies (see child-lifecycle.ts).
 * Exit status 0 on a clean stop, 1 on bad arguments, 2 when it cannot bind.
 */
import { parseArgs } from 'node:util';
import { stopWhenParentGoes } from './child-lifecycle.js';
import { EchoResponder } from './echo-responder.js';

const USAGE = 'usage: echo-responder-main --port PORT --name NAME [--family 4|6|both]';

async function main(): Promise<number> {
  let values: { port?: string; name?: string; family?: string };
  try {
    ({ values } = parseArgs({
      options: { port: { type: 'string' }, name: { type: 'string' }, family: { type: 'string', default: 'both' } },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 1;
  }
  const port = Number(values.port);
  const families: Array<4 | 6> | undefined = values.family === '4' ? [4] : values.family === '6' ? [6] : values.family === 'both' ? [4, 6] : undefined;
  if (!values.name || !Number.isInteger(port) || port < 1 || port > 65535 || !families) {
    process.stderr.write(`${USAGE}\n`);
    return 1;
  }

  let responder: EchoResponder;
  try {
    responder = await EchoResponder.start({ port, name: values.name, families });
  } catch (e) {
    process.stderr.write(`echo-responder: cannot bind port ${port}: ${(e as Error).message}\n`);
    return 2;
  }
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => stopWhenParentGoes(() => resolve()));
  const stats = responder.stats;
  await responder.close();
  process.stderr.write(`${JSON.stringify({ type: 'end', ...stats })}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`echo-responder: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
