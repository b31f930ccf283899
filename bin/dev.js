#!/usr/bin/env node
// Runs the TypeScript sources after a fresh compile: `npm run build` is fast (tsc 7),
// and running one code path (dist/) in dev and prod keeps behaviour identical.
import {execFileSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {execute} from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/tsconfig.json`], {stdio: 'inherit'})
await execute({development: true, dir: import.meta.url})
