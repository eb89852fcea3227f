/**
 * Gate for tests that need the kernel: they run as root or inside an
 * unprivileged user+network namespace (scripts/run-tests.mjs re-executes the
 * suite under `unshare -rn` when not root). When namespaces cannot be made,
 * the test is skipped with the reason printed, except under CI=true, where
 * it fails: CI must run every kernel test.
 */
import { execFileSync } from 'node:child_process';

let cached: string | undefined | null = null;

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelUnavailableReason(): string | undefined {
  if (cached !== null) return cached;
  try {
    execFileSync('unshare', ['--net', '--', 'true'], { stdio: 'pipe' });
    execFileSync('/usr/sbin/ip', ['-V'], { stdio: 'pipe' });
    cached = undefined;
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    cached = `cannot create a network namespace (${err.stderr?.toString().trim() || err.message}); run as root or inside \`unshare -rn\``;
  }
  return cached;
}

/**
 * The project's rule for tests that need something of the host: false when
 * `reason` is undefined (they run); otherwise they are skipped with the
 * reason printed, except under CI=true, where this throws (CI runs them all).
 */
export function skipUnless(what: string, reason: string | undefined): boolean {
  if (reason === undefined) return false;
  if (process.env.CI) throw new Error(`CI=true and ${what} cannot run: ${reason}`);
  console.warn(`skipping ${what}: ${reason}`);
  return true;
}

/** True when kernel tests must be skipped; throws under CI instead of skipping. */
export function skipKernelTests(): boolean {
  return skipUnless('kernel tests', kernelUnavailableReason());
}
