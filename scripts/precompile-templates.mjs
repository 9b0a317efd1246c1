// `npm run build`, after tsc: templates/ compiled ahead of time, so that a
// run loads only Handlebars' runtime (src/render/template-engine.ts). Written
// whole on every build, and by rename, so that no half-written or older file
// stays behind a build that succeeded; one that is older than the templates
// anyway (edited after the build) is never used: its digest differs.
import { renameSync, writeFileSync } from 'node:fs';
import { PRECOMPILED_FILE, precompileTemplates } from '../dist/render/template-engine.js';

const temporary = `${PRECOMPILED_FILE}.${process.pid}.tmp`;
writeFileSync(temporary, precompileTemplates());
renameSync(temporary, PRECOMPILED_FILE);
