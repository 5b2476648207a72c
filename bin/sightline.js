#!/usr/bin/env node
'use strict';
// Thin entry: the CLI is TypeScript compiled to dist/ by `npm install` (prepare).
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'vpn', 'cli', 'index.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('sightline: compiled code not found at ' + entry + '\nRun `npm install` (or `npm run build`) in ' + path.join(__dirname, '..') + ' first.\n');
  process.exit(1);
}
require(entry).main(process.argv).catch((err) => {
  process.stderr.write('sightline: ' + (err && err.message ? err.message : String(err)) + '\n');
  process.exit(1);
});
