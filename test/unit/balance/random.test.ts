/** random: shared conformance plus algorithm-specific behaviour. */
import { runConformance } from './conformance.js';

runConformance({ name: 'random', keyed: false });
