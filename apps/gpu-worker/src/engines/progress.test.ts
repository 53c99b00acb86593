import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EngineProgress } from './engine.js';
import { ProgressParser, ProgressThrottle } from './progress.js';

const bar = (step: number, total: number, rate = '1.23s/it') => `\r  |=====>      | ${step}/${total} - ${rate}\x1b[K`;

describe('ProgressParser', () => {
  it('reads only the bars of the sampling phase, as sd-cli draws them', () => {
    const parser = new ProgressParser();
    const out = [
      '[INFO ] model.cpp:100 - loading tensors\n',
      '\r  |#####     | 1/2 - 300.00MB/s\x1b[K',
      '\r  |##########| 2/2 - 310.00MB/s\x1b[K\n',
      '[INFO ] stable-diffusion.cpp:2000 - generating image: 1/1 - seed 42\n',
      bar(1, 3),
      bar(2, 3, '2.50it/s'),
      `${bar(3, 3)}\n`,
      '[INFO ] stable-diffusion.cpp:2100 - sampling completed, taking 3.70s\n',
      '\r  |====| 1/4 - 0.10s/it\x1b[K',
      '\r  |====| 4/4 - 0.10s/it\x1b[K\n',
      "save result image 0 to 'out.png' (success)\n",
    ];
    const events = out.flatMap((chunk) => parser.push(chunk));
    expect(events).toEqual([
      { percent: 33.3, step: 1, totalSteps: 3, secondsPerStep: 1.23 },
      { percent: 66.7, step: 2, totalSteps: 3, secondsPerStep: 0.4 },
      { percent: 100, step: 3, totalSteps: 3, secondsPerStep: 1.23 },
    ]);
  });

  it('joins a bar split across reads, and reports the step as soon as its bar is complete', () => {
    const parser = new ProgressParser();
    expect(parser.push('[INFO ] x.cpp:1 - generating image: 1/1 - seed 7\n\r  |==>  | 1/')).toEqual([]);
    expect(parser.push('20 - 0.5')).toEqual([]);
    expect(parser.push('0s/it\x1b[K')).toEqual([{ percent: 5, step: 1, totalSteps: 20, secondsPerStep: 0.5 }]);
  });

  it('ignores a redrawn bar for a step it already reported', () => {
    const parser = new ProgressParser();
    parser.push('generating image: 1/1 - seed 1\n');
    expect(parser.push(bar(1, 2) + bar(1, 2) + bar(2, 2))).toHaveLength(2);
  });
});

describe('ProgressThrottle', () => {
  afterEach(() => vi.useRealTimers());

  it('passes at most one update per interval, keeps the latest for the end of it, and the last step at once', () => {
    vi.useFakeTimers();
    const sent: EngineProgress[] = [];
    const throttle = new ProgressThrottle((p) => sent.push(p), 250);
    const p = (step: number) => ({ percent: step * 10, step, totalSteps: 10 });
    throttle.push(p(1));
    throttle.push(p(2));
    throttle.push(p(3));
    expect(sent.map((s) => s.step)).toEqual([1]);
    vi.advanceTimersByTime(250);
    expect(sent.map((s) => s.step)).toEqual([1, 3]);
    throttle.push(p(4));
    throttle.push(p(10));
    expect(sent.map((s) => s.step)).toEqual([1, 3, 10]);
    vi.advanceTimersByTime(1000);
    expect(sent.map((s) => s.step)).toEqual([1, 3, 10]);
  });
});
