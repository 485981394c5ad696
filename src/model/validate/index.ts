/**
 * One validator per input concept (issue 13): upstream fields, names, peer addresses, durations,
 * sizes, status lists. Pure — no I/O, no clock — so the config schema, the admin API, the membership
 * state machine, the apply path and the Raft transport all call the same function, and nothing the
 * front door accepts can be refused deeper in.
 */
export * from './result.js';
export * from './names.js';
export * from './address.js';
export * from './upstream.js';
export * from './duration.js';
export * from './status.js';
export * from './upstream-tls.js';
