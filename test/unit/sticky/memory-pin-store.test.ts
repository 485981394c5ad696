/** MemoryPinStore against the shared PinStore conformance suite, with a controlled clock. */
import { MemoryPinStore } from '../../../src/sticky/index.js';
import { pinStoreConformance } from './pin-store-conformance.js';

let now = 1_000;
const clock = { nowMs: () => now };
pinStoreConformance('memory', () => new MemoryPinStore({ clock }), async (_store, _sid) => {
  now += 10 * 60_000; // past every TTL the suite uses
});
