import { describe, expect, it } from 'vitest';
import { DecodeError, errnoName, errnoNumber, VipaError } from '../../lib/errors.js';

describe('VipaError', () => {
  it('carries code, errno, syscall, op, extack', () => {
    const e = new VipaError({ errno: 17, syscall: 'netlink', op: 'addr add', subject: '198.51.100.7/24 dev eth0', extack: 'ipv4: Address already assigned', extackOffset: 4 });
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ name: 'VipaError', code: 'EEXIST', errno: 17, syscall: 'netlink', op: 'addr add', extack: 'ipv4: Address already assigned', extackOffset: 4 });
    expect(e.isKernelRejection).toBe(true);
    expect(e.message).toBe('addr add 198.51.100.7/24 dev eth0: kernel refused: EEXIST: ipv4: Address already assigned');
  });

  it('names the capability on EPERM', () => {
    expect(new VipaError({ errno: 1, syscall: 'netlink', op: 'addr add' }).message).toMatch(/CAP_NET_ADMIN/);
    expect(new VipaError({ errno: 1, syscall: 'socket', op: 'packet open' }).message).toMatch(/CAP_NET_RAW/);
    expect(new VipaError({ errno: 1, syscall: 'setns', op: 'netlink open' }).message).toMatch(/CAP_SYS_ADMIN/);
    expect(new VipaError({ errno: 17, syscall: 'netlink', op: 'addr add' }).message).not.toMatch(/CAP_/);
  });

  it('tells syscall failures from kernel rejections', () => {
    const e = new VipaError({ errno: 9, syscall: 'sendto', op: 'addr add' });
    expect(e.isKernelRejection).toBe(false);
    expect(e.message).toBe('addr add: sendto failed: EBADF');
  });

  it('maps errno names both ways', () => {
    expect(errnoName(99)).toBe('EADDRNOTAVAIL');
    expect(errnoName(100000)).toBe('E100000');
    expect(errnoNumber('ENOBUFS')).toBe(105);
  });
});

describe('DecodeError', () => {
  it('names codec, reason and offset', () => {
    const e = new DecodeError('arp', 'short', 14, 'needs 28 bytes');
    expect(e).toMatchObject({ codec: 'arp', reason: 'short', offset: 14, message: 'arp: short at byte 14: needs 28 bytes' });
  });
});
