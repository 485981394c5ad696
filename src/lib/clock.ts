/** Time as an injected dependency, so pure modules take `now` and tests control it. */
export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };
