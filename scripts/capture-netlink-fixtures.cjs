#!/usr/bin/env node
// Captures real kernel rtnetlink replies as hex fixtures for the unit tests
// (test/fixtures/netlink/). Run inside a throwaway namespace:
//   unshare -rn node scripts/capture-netlink-fixtures.cjs
// It creates a veth pair there and never touches other namespaces.
const { execFileSync } = require('node:child_process');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { native } = require('../dist/native.js');
const { MessageWriter, forEachMessage } = require('../dist/netlink/message.js');
const { encodeAddressRequest, validateAddressSpec, encodeAddressDump } = require('../dist/netlink/address.js');
const { encodeLinkGet } = require('../dist/netlink/link.js');

const out = join(__dirname, '../test/fixtures/netlink');
const ip = (...a) => execFileSync('/usr/sbin/ip', a);
ip('link', 'add', 'vipa0', 'address', '02:00:00:00:00:01', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'vipa1');
ip('link', 'set', 'vipa0', 'up');
ip('link', 'set', 'vipa1', 'up');
const index = JSON.parse(execFileSync('/usr/sbin/ip', ['-json', 'link', 'show', 'vipa0']).toString())[0].ifindex;

const sock = new (native().Socket)('netlink', { protocol: 0 });
const w = new MessageWriter();
const buf = Buffer.alloc(65536);
// Reads datagrams until the request's NLMSG_ERROR or NLMSG_DONE and saves
// them concatenated (a reply may span several datagrams).
function exchange(name, fill) {
  w.reset();
  fill(w);
  const seq = w.buffer.readUInt32LE(8);
  sock.send(w.buffer, 0, w.length);
  const parts = [];
  for (let done = false; !done; ) {
    const n = sock.recv(buf, 1000);
    if (n < 0) throw new Error(`${name}: no reply`);
    parts.push(Buffer.from(buf.subarray(0, n)));
    forEachMessage(buf, n, (m) => {
      if (m.seq === seq && (m.type === 2 || m.type === 3)) done = true;
    });
  }
  writeFileSync(join(out, `${name}.hex`), `${Buffer.concat(parts).toString('hex')}\n`);
}
const spec = { link: index, address: '198.51.100.7/24', label: 'vipa0:v', broadcast: true, validLifetime: 300, preferredLifetime: 200, proto: 0x76 };
const req = validateAddressSpec(spec);
req.ifindex = index;
exchange('ack-ok', (w) => encodeAddressRequest(w, 'add', req, 1001));
exchange('ack-eexist', (w) => encodeAddressRequest(w, 'add', req, 1002));
const v6 = validateAddressSpec({ link: index, address: '2001:db8::7/64', nodad: true, proto: 0x76 });
exchange('ack-ok-v6', (w) => encodeAddressRequest(w, 'add', v6, 1003));
exchange('dump-addr-v4', (w) => encodeAddressDump(w, 4, 1004));
exchange('dump-addr-v6', (w) => encodeAddressDump(w, 6, 1005));
exchange('link-get-vipa0', (w) => encodeLinkGet(w, 'vipa0', 1006));
exchange('link-get-missing', (w) => encodeLinkGet(w, 'nosuch0', 1007));
sock.close();
console.log(`fixtures written for ifindex ${index}`);
