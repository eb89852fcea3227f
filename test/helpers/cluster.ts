/** The cluster harness lives with the demo, which ships it (lib/demo/cluster.ts). */
export { startCluster, waitUntil, TestCluster, type TestClusterOptions, type TestDaemon } from '../../lib/demo/cluster.js';
