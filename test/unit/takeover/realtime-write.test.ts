import { describe, expect, it } from 'vitest';
import { REALTIME_WRITE_MAX_IPV6, realtimeWrite } from '../../../lib/takeover/realtime.js';

describe('realtimeWrite', () => {
  it('writes at real-time priority up to REALTIME_WRITE_MAX_IPV6 IPv6 addresses, at normal priority above', () => {
    expect(REALTIME_WRITE_MAX_IPV6).toBe(10);
    expect(realtimeWrite(0)).toBe(true); // IPv4 only: any number of addresses
    expect(realtimeWrite(1)).toBe(true);
    expect(realtimeWrite(10)).toBe(true);
    expect(realtimeWrite(11)).toBe(false);
    expect(realtimeWrite(1000)).toBe(false);
  });
});
