// Start-up: `jarvis --version` and `jarvis transcribe --help` against `node -e ""`, medians of 15 runs.
// Goals: ≤ 1.8× and ≤ 2.5×.
import {bin, median, timed} from './lib.mjs'

const N = 15
async function med(args) {
  const xs = []
  for (let i = 0; i < N; i++) xs.push((await timed(process.execPath, args)).ms)
  return median(xs)
}
const ref = await med(['-e', ''])
const version = await med([bin, '--version'])
const help = await med([bin, 'transcribe', '--help'])
const full = await med([bin, 'config', 'show', '--json'])
console.log(`startup  node -e ""              ${ref.toFixed(1)} ms (reference)`)
console.log(`startup  jarvis --version         ${version.toFixed(1)} ms  ${(version / ref).toFixed(2)}×  (goal ≤ 1.8×)`)
console.log(`startup  jarvis transcribe --help ${help.toFixed(1)} ms  ${(help / ref).toFixed(2)}×  (goal ≤ 2.5×)`)
console.log(`startup  jarvis config show       ${full.toFixed(1)} ms  ${(full / ref).toFixed(2)}×  (a full oclif command, for context)`)
