/** The namespace LAN used by kernel tests lives with the demo, which ships it (lib/demo/lan.ts). */
export { createHost, createLan, TestHost, TestLan } from '../../lib/demo/lan.js';
