// Global set-up: a fresh `modelreg serve` on a free loopback port with a temporary data
// directory, and the fake provider. The bootstrap token is read from <data-dir>/bootstrap-token
// (stdout is not a terminal). Tests find both through the environment.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target');

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

async function until<T>(what: string, f: () => Promise<T | null> | T | null, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await f();
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function fakeProvider(bin: string): Promise<{ child: ChildProcess; base: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) ok({ child, base: m[1] });
    });
    child.on('exit', (code) => fail(new Error(`the fake provider exited (${code}) before listening`)));
  });
}

/** A `modelreg serve` on a free loopback port with a temporary data directory. */
export async function startModelreg(env: Record<string, string> = {}) {
  const bin = process.env.MODELREG_BIN ?? join(targetDir, 'debug/modelreg');
  const data = mkdtempSync(join(tmpdir(), 'modelreg-console-'));
  const port = await freePort();
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      MODELREG_DATA_DIR: data,
      MODELREG_LISTEN: `127.0.0.1:${port}`,
      MODELREG_LOG_LEVEL: 'error',
      MODELREG_RATE_LIMIT_PER_SEC: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await until('the server', async () => ((await fetch(`${url}/readyz`).catch(() => null))?.ok ? true : null));
  return {
    url,
    data,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      rmSync(data, { recursive: true, force: true });
    },
  };
}

export default async function setup() {
  // Against a server that is already running (and its fake provider), as for measuring at a
  // scale the set-up would take too long to seed.
  if (process.env.MODELREG_URL && process.env.MODELREG_TOKEN && process.env.FAKE_PROVIDER_URL) return;
  const fake = process.env.FAKE_PROVIDER_BIN ?? join(targetDir, 'debug/examples/fake_provider');
  const server = await startModelreg();
  const provider = await fakeProvider(fake);
  const tokenFile = join(server.data, 'bootstrap-token');
  const token = await until('the bootstrap token', () => (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() || null : null));
  process.env.MODELREG_URL = server.url;
  process.env.MODELREG_TOKEN = token;
  process.env.FAKE_PROVIDER_URL = provider.base;
  return async () => {
    provider.child.kill('SIGTERM');
    await server.stop();
  };
}
