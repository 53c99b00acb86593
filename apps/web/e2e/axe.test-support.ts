import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type * as AxeCore from 'axe-core';
import type { AxeResults, Result } from 'axe-core';

/**
 * axe-core in the browser journeys: WCAG 2.1 A and AA plus axe's best practices, in the light
 * and the dark theme (the app follows prefers-color-scheme). A critical or serious violation
 * fails the journey; moderate and minor ones are counted and written next to the screenshots.
 */

const AXE_SOURCE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];
const BLOCKING = new Set(['critical', 'serious']);

export interface AxeFinding {
  state: string;
  scheme: 'light' | 'dark';
  rule: string;
  impact: string;
  nodes: string[];
}

/** Every finding of this run, for the report a journey writes at the end. */
export const axeFindings: AxeFinding[] = [];

/** Every page state and scheme scanned in this run (so a clean report says how much was looked at). */
export const axeScans: { state: string; scheme: 'light' | 'dark' }[] = [];

async function scan(page: Page): Promise<AxeResults> {
  const loaded = await page.evaluate(() => typeof (window as { axe?: unknown }).axe === 'object');
  if (!loaded) await page.addScriptTag({ path: AXE_SOURCE });
  return page.evaluate(async (tags) => {
    const axe = (window as unknown as { axe: typeof AxeCore }).axe;
    return axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
  }, TAGS);
}

function describe(violation: Result): string {
  const nodes = violation.nodes
    .slice(0, 4)
    .map((n) => `    ${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1, 2).join(' ').trim()}`);
  return `  ${violation.impact} ${violation.id} (${violation.nodes.length}): ${violation.help}\n${nodes.join('\n')}`;
}

/**
 * Runs axe on the page as it is now, in both colour schemes, and throws on any critical or
 * serious violation, naming the rule and the nodes. The scheme is put back to what it was.
 */
export async function expectAccessible(
  page: Page,
  state: string,
  schemes: readonly ('light' | 'dark')[] = ['light', 'dark'],
): Promise<void> {
  const original = await page.evaluate(() => (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
  const blocking: string[] = [];
  // No transitions or animations while scanning: a headless browser that paints no frames
  // leaves a colour transition half-way after the scheme changes, and axe would read that.
  await page.evaluate(() => {
    const style = document.createElement('style');
    style.id = 'axe-no-motion';
    style.textContent = '*, *::before, *::after { transition: none !important; animation: none !important; }';
    document.head.append(style);
  });
  try {
    for (const scheme of schemes) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 50))));
      const results = await scan(page);
      axeScans.push({ state, scheme });
      for (const violation of results.violations) {
        axeFindings.push({
          state,
          scheme,
          rule: violation.id,
          impact: violation.impact ?? 'unknown',
          nodes: violation.nodes.map((n) => n.target.join(' ')),
        });
        if (BLOCKING.has(violation.impact ?? '')) blocking.push(`[${scheme}] ${describe(violation)}`);
      }
    }
  } finally {
    await page.emulateMedia({ colorScheme: original });
    await page.evaluate(() => document.getElementById('axe-no-motion')?.remove());
  }
  if (blocking.length > 0) throw new Error(`axe: ${state} has critical or serious violations:\n${blocking.join('\n')}`);
}

/** Writes what axe found (moderate and minor included) as JSON, for a person to read. */
export function writeAxeReport(directory: string, name: string): void {
  const counts: Record<string, number> = { critical: 0, serious: 0, moderate: 0, minor: 0 };
  for (const finding of axeFindings) counts[finding.impact] = (counts[finding.impact] ?? 0) + finding.nodes.length;
  const states = new Set(axeScans.map((s) => s.state)).size;
  const scans = { states, scans: axeScans.length, scanned: axeScans };
  writeFileSync(
    join(directory, `${name}.json`),
    `${JSON.stringify({ counts, ...scans, findings: axeFindings }, null, 2)}\n`,
  );
  const byImpact = Object.entries(counts)
    .map(([impact, nodes]) => `${nodes} ${impact}`)
    .join(', ');
  console.log(`axe (${name}): ${axeScans.length} scans of ${states} page states; nodes: ${byImpact}`);
}
