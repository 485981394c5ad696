/** round-robin: shared conformance plus algorithm-specific behaviour. */
import { runConformance } from './conformance.js';

runConformance({ name: 'round-robin', keyed: false });
