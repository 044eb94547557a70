// Builds the console into crates/modelreg-api/console/dist (or the directory given as the
// first argument): app.js and app.css by esbuild, index.html and the favicon as they are, and
// Swagger UI's published files as they are. Deterministic: the same sources give the same
// bytes (no timestamps, no content hashes in names, no source maps).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, '../crates/modelreg-api/console/dist'));
const swagger = join(here, 'node_modules/swagger-ui-dist');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: join(here, 'src/main.tsx') },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
});
await build({
  entryPoints: { app: join(here, 'src/app.css') },
  outdir: out,
  bundle: true,
  minify: true,
  charset: 'utf8',
  logLevel: 'warning',
});

for (const f of ['index.html', 'favicon.svg']) copyFileSync(join(here, 'src', f), join(out, f));
for (const f of ['swagger-ui-bundle.js', 'swagger-ui.css']) copyFileSync(join(swagger, f), join(out, f));
writeFileSync(
  join(out, 'swagger-ui-LICENSE.txt'),
  readFileSync(join(swagger, 'LICENSE'), 'utf8') + '\n' + readFileSync(join(swagger, 'NOTICE'), 'utf8'),
);
