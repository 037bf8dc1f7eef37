/**
 * The dashboard's files (src/admin/dashboard/): plain JavaScript that typechecks by its
 * `// @ts-check` JSDoc against the DOM, loads nothing from outside the server, and runs under the
 * admin API's content security policy (no inline script or handler).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/run-script.js';

const DIR = join(ROOT, 'src/admin/dashboard');
const files = readdirSync(DIR);
const read = (name: string) => readFileSync(join(DIR, name), 'utf8');

describe('the dashboard files', () => {
  it('typecheck: every module is // @ts-check and strict', () => {
    const modules = files.filter((f) => f.endsWith('.js'));
    for (const f of modules) expect(read(f).startsWith('// @ts-check\n'), f).toBe(true);
    const program = ts.createProgram(
      modules.map((f) => join(DIR, f)),
      {
        allowJs: true,
        checkJs: true,
        noEmit: true,
        strict: true,
        noUncheckedIndexedAccess: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts', 'lib.dom.asynciterable.d.ts'],
        types: [],
        skipLibCheck: true,
      },
    );
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file && d.start !== undefined ? `${d.file.fileName.slice(DIR.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(problems).toEqual([]);
  }, 30_000);

  it('load nothing from elsewhere, and every module they import is there', () => {
    for (const f of files.filter((n) => /\.(js|html|css)$/.test(n))) {
      const text = read(f);
      expect(text, f).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
      expect(text, f).not.toMatch(/@import\s+url|url\(\s*["']?(https?:)?\/\//i);
      for (const [, spec] of text.matchAll(/\bfrom\s+'([^']+)'/g)) {
        expect(spec, `${f} imports ${spec}`).toMatch(/^\.\/[\w-]+\.js$/);
        expect(files, `${f} imports ${spec}`).toContain(spec!.slice(2));
      }
    }
  });

  it('index.html has no inline script or handler, and names its assets relatively', () => {
    const html = read('index.html');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    for (const [, ref] of html.matchAll(/\b(?:src|href)="([^"#][^"]*)"/g)) expect(files, ref).toContain(ref);
  });
});
