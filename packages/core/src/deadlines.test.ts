import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { estimateCredits } from './credits.js';
import { jobDeadline, type DeadlinePolicy } from './deadlines.js';
import { MAX_SIDE } from './generation.js';

const policy: DeadlinePolicy = {
  secondsPerCredit: 1,
  loadAllowanceSeconds: 120,
  uploadAllowanceSeconds: 60,
  ceilingSeconds: 3600,
};

describe('jobDeadline', () => {
  it('gives the engine the seconds its hold pays for plus the load, and the run the upload on top', () => {
    expect(jobDeadline(290, policy)).toEqual({ engineSeconds: 410, runSeconds: 470 });
    expect(jobDeadline(1, policy)).toEqual({ engineSeconds: 121, runSeconds: 181 });
  });

  it('lets the largest job a plan allows run to its end (the old fixed 300 s never could)', () => {
    const largest = estimateCredits({ model: 'sdxl', width: MAX_SIDE, height: MAX_SIDE, steps: 150 });
    const deadline = jobDeadline(largest, policy);
    expect(deadline.engineSeconds).toBeGreaterThanOrEqual(largest);
    expect(deadline.runSeconds).toBeGreaterThan(deadline.engineSeconds);
  });

  it('never passes the ceiling, and a capped run still keeps time to upload after the engine', () => {
    const capped = jobDeadline(10_000, policy);
    expect(capped.runSeconds).toBe(3600);
    expect(capped.engineSeconds).toBeLessThan(3600);
    expect(capped.runSeconds - capped.engineSeconds).toBeGreaterThan(0);
  });

  it('scales engine time by seconds per credit (slower GPUs get more, tests compress time)', () => {
    expect(
      jobDeadline(100, { ...policy, secondsPerCredit: 0.01, loadAllowanceSeconds: 1, uploadAllowanceSeconds: 1 }),
    ).toEqual({ engineSeconds: 2, runSeconds: 3 });
  });

  it('is monotonic in the hold and always leaves the run longer than the engine', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100_000 }), (a, b) => {
        const [small, large] = a <= b ? [a, b] : [b, a];
        const x = jobDeadline(small, policy);
        const y = jobDeadline(large, policy);
        expect(y.engineSeconds).toBeGreaterThanOrEqual(x.engineSeconds);
        expect(y.runSeconds).toBeGreaterThanOrEqual(x.runSeconds);
        expect(x.runSeconds).toBeGreaterThan(x.engineSeconds);
        expect(x.runSeconds).toBeLessThanOrEqual(policy.ceilingSeconds);
      }),
    );
  });

  it('refuses a hold that is not a number of credits', () => {
    expect(() => jobDeadline(Number.NaN, policy)).toThrow(RangeError);
    expect(() => jobDeadline(-1, policy)).toThrow(RangeError);
  });
});
