import type { Reporter, SerializedError, TestModule, TestRunEndReason } from 'vitest/node';

/**
 * Ends the run with one plain line, `N passed, N failed, N skipped`, that any CI can read.
 *
 * `failed` counts failed tests, plus every test file or suite that failed outside its tests
 * (an import error, a throwing beforeAll/afterAll, a file without tests — its tests then show
 * as skipped or passed), plus every unhandled error. A run vitest calls failed never reads
 * `0 failed`: if none of those explain it, the run itself counts as one failure.
 */
export default class PlainSummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: TestRunEndReason,
  ): void {
    const counts = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
    for (const testModule of testModules) {
      for (const test of testModule.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      if (testModule.errors().length) counts.failed++;
      for (const suite of testModule.children.allSuites()) if (suite.errors().length) counts.failed++;
    }
    if (reason !== 'passed' && counts.failed === 0) counts.failed = 1;
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
