import { describe, expect, it } from 'vitest';
import { chargeCredits, estimateCredits, splitSpend } from './credits.js';

describe('estimateCredits', () => {
  it("gives the product spec's example: SDXL 1024×1024, 30 steps → 90", () => {
    expect(estimateCredits({ model: 'sdxl', width: 1024, height: 1024, steps: 30 })).toBe(90);
  });

  it('prices sd15 at factor 1.0 (two thirds of SDXL for the same job)', () => {
    expect(estimateCredits({ model: 'sd15', width: 1024, height: 1024, steps: 30 })).toBe(60);
    expect(estimateCredits({ model: 'sd15', width: 512, height: 512, steps: 20 })).toBe(10);
  });

  it('scales with pixels and steps', () => {
    expect(estimateCredits({ model: 'sdxl', width: 512, height: 512, steps: 30 })).toBe(23); // 22.5 up
    expect(estimateCredits({ model: 'sdxl', width: 2048, height: 2048, steps: 150 })).toBe(1800);
  });

  it('rounds every fraction up', () => {
    expect(estimateCredits({ model: 'sd15', width: 512, height: 512, steps: 3 })).toBe(2); // 1.5
    expect(estimateCredits({ model: 'sdxl', width: 576, height: 512, steps: 21 })).toBe(18); // 17.71875
    expect(estimateCredits({ model: 'sd15', width: 768, height: 512, steps: 1 })).toBe(1); // 0.75
  });

  it('never estimates 0', () => {
    expect(estimateCredits({ model: 'sd15', width: 256, height: 256, steps: 1 })).toBe(1); // 0.125
  });

  it('is exact where floating point would not be (no 90.00000001 → 91)', () => {
    for (const steps of [10, 30, 50, 100, 150]) {
      expect(estimateCredits({ model: 'sdxl', width: 1024, height: 1024, steps })).toBe(steps * 3);
    }
  });
});

describe('chargeCredits', () => {
  it("gives the product spec's example: 45 s of engine time charges 45 of a 90 hold and refunds 45", () => {
    const held = estimateCredits({ model: 'sdxl', width: 1024, height: 1024, steps: 30 });
    const charged = chargeCredits(45, held);
    expect(charged).toBe(45);
    expect(held - charged).toBe(45);
  });

  it('rounds engine seconds up', () => {
    expect(chargeCredits(44.01, 90)).toBe(45);
    expect(chargeCredits(1.0000001, 90)).toBe(2);
  });

  it('charges at least 1, even for an instant job', () => {
    expect(chargeCredits(0, 90)).toBe(1);
    expect(chargeCredits(0.2, 90)).toBe(1);
  });

  it('never charges more than the hold', () => {
    expect(chargeCredits(90, 90)).toBe(90);
    expect(chargeCredits(90.5, 90)).toBe(90);
    expect(chargeCredits(3600, 90)).toBe(90);
  });

  it('refuses negative or non-finite engine time', () => {
    expect(() => chargeCredits(-1, 90)).toThrow('engine seconds must be a finite non-negative number, got -1');
    expect(() => chargeCredits(Number.NaN, 90)).toThrow(RangeError);
    expect(() => chargeCredits(Number.POSITIVE_INFINITY, 90)).toThrow(RangeError);
  });
});

describe('splitSpend', () => {
  it('takes subscription credits first', () => {
    expect(splitSpend({ subscription: 100, purchased: 100 }, 30)).toEqual({ subscription: 30, purchased: 0 });
  });

  it('takes the rest from purchased credits', () => {
    expect(splitSpend({ subscription: 20, purchased: 100 }, 30)).toEqual({ subscription: 20, purchased: 10 });
    expect(splitSpend({ subscription: 0, purchased: 100 }, 30)).toEqual({ subscription: 0, purchased: 30 });
  });

  it('splits an exact balance exactly', () => {
    expect(splitSpend({ subscription: 20, purchased: 10 }, 30)).toEqual({ subscription: 20, purchased: 10 });
  });
});
