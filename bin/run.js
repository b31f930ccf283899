#!/usr/bin/env node
// Start-up fast paths: `--version` and `--help` are what scripts and people run most, and
// loading oclif costs ~100 ms. Help texts are rendered by oclif itself at build time
// (scripts/build-help.mjs → dist/help.json), and oclif.manifest.json saves importing every
// command; both are trusted only while no compiled command is newer than they are, so a
// partial rebuild (plain `tsc`) can never hide a new command or show stale help.
import {readdirSync, readFileSync, statSync} from 'node:fs'
import module from 'node:module'

module.enableCompileCache?.()
// `jarvis cost gpus | head`: once the reader is gone, stop quietly like other Unix tools, instead of
// leaving oclif waiting on a write that can never drain (Node then warns and exits 13).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw err
  })
}
const argv = process.argv.slice(2)
const root = new URL('..', import.meta.url)
const fast = !process.env.JARVIS_NO_FAST_PATH

if (fast && argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
  process.stdout.write(`${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else if (fast && argv.length > 0 && argv.at(-1) === '--help' && cachedHelp(argv.slice(0, -1)) !== undefined) {
  process.stdout.write(cachedHelp(argv.slice(0, -1)))
} else {
  const {execute} = await import('@oclif/core')
  const ignoreManifest = !fresh(new URL('oclif.manifest.json', root))
  await execute({dir: import.meta.url, loadOptions: {root: new URL('.', root).pathname, ignoreManifest}})
}

/** Newest mtime of the compiled commands (files and folders: an added command changes its folder). */
function newestCommand(dir = new URL('dist/commands/', root)) {
  let newest = statSync(dir).mtimeMs
  for (const e of readdirSync(dir, {withFileTypes: true})) {
    const p = new URL(e.name + (e.isDirectory() ? '/' : ''), dir)
    newest = Math.max(newest, e.isDirectory() ? newestCommand(p) : statSync(p).mtimeMs)
  }
  return newest
}

function fresh(file) {
  try {
    return statSync(file).mtimeMs >= newestCommand()
  } catch {
    return false
  }
}

function cachedHelp(words) {
  if (words.some((w) => w.startsWith('-'))) return undefined
  const file = new URL('dist/help.json', root)
  if (!fresh(file)) return undefined
  try {
    return JSON.parse(readFileSync(file, 'utf8'))[words.join(' ')]
  } catch {
    return undefined
  }
}
