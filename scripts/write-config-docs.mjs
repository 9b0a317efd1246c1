// Writes docs/config.md from the config.sh schema (src/config/schema.ts): `npm run docs:config`.
import { writeFileSync } from 'node:fs';
import { URL } from 'node:url';
import { configReferencePage } from '../dist/config/describe-keys.js';

writeFileSync(new URL('../docs/config.md', import.meta.url), configReferencePage());
