#!/usr/bin/env node
// Start-up fast paths: `--version` and `--help` are what scripts and people run most, and
// loading oclif costs ~100 ms. Help texts are rendered by oclif itself at build time
// (scripts/build-help.mjs → dist/help.json); everything else goes through oclif.
import {readFileSync} from 'node:fs'
import module from 'node:module'

module.enableCompileCache?.()
const argv = process.argv.slice(2)
const fast = !process.env.JARVIS_NO_FAST_PATH

if (fast && argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  process.stdout.write(`${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else if (fast && argv.length > 0 && argv.at(-1) === '--help' && cachedHelp(argv.slice(0, -1)) !== undefined) {
  process.stdout.write(cachedHelp(argv.slice(0, -1)))
} else {
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}

function cachedHelp(words) {
  if (words.some((w) => w.startsWith('-'))) return undefined
  try {
    const help = JSON.parse(readFileSync(new URL('../dist/help.json', import.meta.url), 'utf8'))
    return help[words.join(' ')]
  } catch {
    return undefined
  }
}
