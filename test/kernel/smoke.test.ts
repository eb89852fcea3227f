import { test, expect } from 'vitest';
import { createLan } from '../helpers/netns.js';
import { Netlink } from '../../lib/index.js';
test('lan', async () => {
  const lan = await createLan(['a', 'b']);
  try {
    const nl = new Netlink({ netns: lan.host('a').netns });
    const eth0 = nl.linkGetSync('eth0');
    nl.addrAddSync({ link: eth0.index, address: '198.51.100.1/24' });
    lan.host('b').ip('addr', 'add', '198.51.100.2/24', 'dev', 'eth0');
    lan.host('b').run('ping', '-c1', '-W1', '198.51.100.1');
    expect(eth0.name).toBe('eth0');
    nl.close();
  } finally { await lan.destroy(); }
});
