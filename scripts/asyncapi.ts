// Writes asyncapi.json, the participant protocol's AsyncAPI document, at the package root:
// run `npm run asyncapi` after a change to src/transport/protocol.ts or src/transport/asyncapi.ts
// (test/unit/asyncapi.test.ts fails until the committed file is what the generator gives).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asyncApiDocument } from '../src/transport/asyncapi.js';

const path = join(dirname(fileURLToPath(import.meta.url)), '..', 'asyncapi.json');
writeFileSync(path, `${JSON.stringify(asyncApiDocument(), null, 2)}\n`);
console.log(`wrote ${path}`);
