#!/usr/bin/env node
// Runs the TypeScript sources after a fresh compile: `npm run build` is fast (tsc 7),
// and running one code path (dist/) in dev and prod keeps behaviour identical.
import {execFileSync} from 'node:child_process'
import {rmSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {execute} from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, "-p", `${root}/tsconfig.json`], {stdio: "inherit"})
// A manifest left from an earlier build would hide new commands: dev runs without one.
rmSync(`${root}/oclif.manifest.json`, {force: true})
process.env.JARVIS_NO_FAST_PATH = '1'
await execute({development: true, dir: import.meta.url})
