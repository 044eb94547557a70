// Browser tests of the console: Debian's chromium (never a downloaded browser), headless,
// against a real `modelreg serve` and the fake provider, both started by tests/server.ts.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  globalSetup: './tests/server.ts',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  // One browser at a time: the machines have 2 cores, and the server is shared.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  reporter: [['list']],
  outputDir: process.env.CONSOLE_TEST_OUTPUT ?? '../target/console/test-results',
  use: {
    headless: true,
    launchOptions: { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] },
    viewport: { width: 1360, height: 900 },
    trace: 'off',
  },
});
