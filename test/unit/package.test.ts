/**
 * The package installs what the library uses and nothing else: its runtime dependencies (and
 * required peer dependencies) are exactly the packages that src/ and machines/ import, so a user
 * does not download what only the bench, the tests or the examples need.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface PackageJson {
  license: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;

function files(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(root, path)).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The package a specifier names (`zod/v4` → `zod`, `@scope/name/sub` → `@scope/name`), or `null` for a relative path or a builtin. */
function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('#')) return null;
  if (specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!)) return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Every package imported by a file of src/ or machines/: static, type-only, re-exports and dynamic `import()`, comments left out. */
function importedPackages(): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const file of [...files('src'), ...files('machines')]) {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(root, file), 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      const name = packageOf(fileName);
      if (name) users.set(name, [...(users.get(name) ?? []), file]);
    }
  }
  return users;
}

describe('package.json', () => {
  const dependencies = Object.keys(pkg.dependencies ?? {});
  const peers = Object.keys(pkg.peerDependencies ?? {});
  const requiredPeers = peers.filter((name) => pkg.peerDependenciesMeta?.[name]?.optional !== true);

  it('finds the imports it checks', () => {
    const imported = importedPackages();
    expect(imported.get('xstate')?.length).toBeGreaterThan(0);
    expect(imported.get('zod')?.length).toBeGreaterThan(0);
    expect(packageOf('node:fs')).toBeNull();
    expect(packageOf('fs/promises')).toBeNull();
    expect(packageOf('@statelyai/inspect/server')).toBe('@statelyai/inspect');
  });

  it('declares as runtime dependencies and required peers exactly the packages that src/ and machines/ import', () => {
    const imported = [...importedPackages().keys()].sort();
    expect([...dependencies, ...requiredPeers].sort()).toEqual(imported);
  });

  it('keeps peer dependencies out of dependencies, and installs each for the repo itself as a devDependency', () => {
    expect(peers.filter((name) => dependencies.includes(name))).toEqual([]);
    expect(peers.filter((name) => !(name in (pkg.devDependencies ?? {})))).toEqual([]);
  });

  it('asks for zod 4 (the public types are zod 4 types) and offers @statelyai/inspect as an optional peer', () => {
    expect(pkg.peerDependencies?.zod).toBe('^4.0.0');
    expect(pkg.peerDependenciesMeta?.['@statelyai/inspect']?.optional).toBe(true);
  });

  it('ships the LICENSE that its license field names', () => {
    expect(pkg.license).toBe('MIT');
    const path = join(root, 'LICENSE');
    expect(existsSync(path)).toBe(true);
    const text = readFileSync(path, 'utf8');
    expect(text).toMatch(/^MIT License/);
    expect(text).toContain('Copyright (c) 2026 the sagachart authors');
  });
});
