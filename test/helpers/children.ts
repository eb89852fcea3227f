/** Child processes of the kernel tests: readiness and exit. */
import type { ChildProcess } from 'node:child_process';

/** Resolves when the child prints `ready`; rejects if it exits first. */
export function readyLine(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('ready\n')) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited ${code} before ready: ${err.trim()}`)));
  });
}

/** The child's exit code, once it has exited. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
