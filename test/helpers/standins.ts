// Stand-ins for provider CLIs that cannot be installed here (fly, modal, gcloud, aws,
// kubectl, vastai, ...): small executables written onto a private PATH that record every
// call (argv, stdin, env, cwd, and any file named in argv) to a JSONL file and answer from
// rules scripted per test, shaped like the real tool's documented output.
//
//   const s = await createStandIns({fly: [{match: ['version'], stdout: 'fly v0.3.200'}]})
//   s.rules('fly', [...])                       // replace a tool's rules mid-test
//   await runCli(['deploy', 'fly'], {env: s.env()})
//   s.calls('fly').map((c) => c.argv)           // assert the command sequence
//
// The PATH the stand-ins give holds only the stand-ins, node, and tools passed through on
// request ({passthrough: ['python3']}), so a real gcloud/kubectl on this machine never
// answers in a test, and removing a stand-in (s.remove('fly')) makes the tool "missing".
import {chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {delimiter, dirname, join} from 'node:path'
import {afterAll} from 'vitest'

/** One scripted answer. The first rule whose conditions all hold answers the call. */
export interface Rule {
  /** argv must start with these ("*" matches any single argument). */
  match?: string[]
  /** argv must contain each of these somewhere. */
  includes?: string[]
  /** stdin must contain this text. */
  stdinIncludes?: string
  /** Printed on stdout; an object or array is printed as JSON. */
  stdout?: string | object
  stderr?: string
  exitCode?: number
  /** Answer at most this many times, then fall through to later rules. */
  times?: number
  /** Wait this long before answering (for spinner / timeout paths). */
  delayMs?: number
}

export interface Call {
  tool: string
  argv: string[]
  stdin: string
  env: Record<string, string>
  cwd: string
  /** Files named in argv (by path, or as --flag=PATH) that existed when the tool ran. */
  files: Record<string, {mode: number; content: string}>
  time: number
}

export interface StandIns {
  /** Directory holding the stand-in executables (first on PATH). */
  binDir: string
  /** Environment for a child process: PATH with only the stand-ins, node and passthroughs. */
  env(extra?: Record<string, string | undefined>): Record<string, string | undefined>
  /** Replace the rules of one tool (creating its stand-in if needed). */
  rules(tool: string, rules: Rule[]): void
  /** Recorded calls, oldest first (optionally of one tool). */
  calls(tool?: string): Call[]
  clearCalls(): void
  /** Delete a tool's stand-in: the tool is then "not installed". */
  remove(tool: string): void
  /** Every recorded byte (argv, stdin, env values excluded) as one string, to assert no secret leaked into argv. */
  argvText(): string
}

// The stand-in itself: plain node, no dependencies, runs under `#!/usr/bin/env node`.
const CORE = String.raw`
import {appendFileSync, existsSync, readFileSync, statSync, writeFileSync} from 'node:fs'
const [tool, dir] = [process.env.STANDIN_TOOL_NAME, process.env.STANDIN_DIR]
const argv = process.argv.slice(2)
let stdin = ''
if (!process.stdin.isTTY) {
  try { stdin = readFileSync(0, 'utf8') } catch {}
}
const files = {}
for (const a of argv) {
  let p = a.includes('=') && a.startsWith('-') ? a.slice(a.indexOf('=') + 1) : a
  if (p.startsWith('file://')) p = p.slice(7) // aws reads parameters from file://PATH
  try {
    const st = statSync(p)
    if (st.isFile() && st.size < 262144) files[p] = {mode: st.mode & 0o777, content: readFileSync(p, 'utf8')}
  } catch {}
}
const env = {...process.env}
delete env.STANDIN_TOOL_NAME; delete env.STANDIN_DIR
appendFileSync(dir + '/calls.jsonl', JSON.stringify({tool, argv, stdin, env, cwd: process.cwd(), files, time: Date.now()}) + '\n')
const rulesFile = dir + '/rules/' + tool + '.json'
const rules = existsSync(rulesFile) ? JSON.parse(readFileSync(rulesFile, 'utf8')) : []
const countsFile = dir + '/counts/' + tool + '.json'
const counts = existsSync(countsFile) ? JSON.parse(readFileSync(countsFile, 'utf8')) : {}
const matches = (r) =>
  (!r.match || (r.match.length <= argv.length && r.match.every((m, i) => m === '*' || m === argv[i]))) &&
  (!r.includes || r.includes.every((x) => argv.includes(x))) &&
  (!r.stdinIncludes || stdin.includes(r.stdinIncludes)) &&
  (r.times === undefined || (counts[rules.indexOf(r)] ?? 0) < r.times)
const rule = rules.find(matches)
if (!rule) {
  process.stderr.write('standin ' + tool + ': no rule for: ' + argv.join(' ') + '\n')
  process.exit(97)
}
counts[rules.indexOf(rule)] = (counts[rules.indexOf(rule)] ?? 0) + 1
writeFileSync(countsFile, JSON.stringify(counts))
if (rule.delayMs) await new Promise((r) => setTimeout(r, rule.delayMs))
if (rule.stdout !== undefined) process.stdout.write(typeof rule.stdout === 'string' ? rule.stdout : JSON.stringify(rule.stdout, null, 2) + '\n')
if (rule.stderr) process.stderr.write(rule.stderr)
process.exitCode = rule.exitCode ?? 0
`

export async function createStandIns(tools: Record<string, Rule[]> = {}, opts: {passthrough?: string[]} = {}): Promise<StandIns> {
  const dir = await mkdtemp(join(tmpdir(), 'jarvis-standins-'))
  afterAll(() => rm(dir, {recursive: true, force: true}))
  const binDir = join(dir, 'bin')
  for (const d of [binDir, join(dir, 'rules'), join(dir, 'counts')]) mkdirSync(d, {recursive: true})
  writeFileSync(join(dir, 'core.mjs'), CORE)
  writeFileSync(join(dir, 'calls.jsonl'), '')
  for (const tool of opts.passthrough ?? []) {
    const real = findOnPath(tool)
    if (real) symlinkSync(real, join(binDir, tool))
  }
  const callsFile = join(dir, 'calls.jsonl')

  const install = (tool: string) => {
    const exe = join(binDir, tool)
    if (existsSync(exe)) return
    const script = `#!/usr/bin/env node\nprocess.env.STANDIN_TOOL_NAME = ${JSON.stringify(tool)}\nprocess.env.STANDIN_DIR = ${JSON.stringify(dir)}\nawait import(${JSON.stringify(join(dir, 'core.mjs'))})\n`
    writeFileSync(exe, script)
    chmodSync(exe, 0o755)
  }

  const s: StandIns = {
    binDir,
    env(extra = {}) {
      return {PATH: [binDir, dirname(process.execPath)].join(delimiter), HOME: dir, ...extra}
    },
    rules(tool, rules) {
      install(tool)
      writeFileSync(join(dir, 'rules', `${tool}.json`), JSON.stringify(rules, null, 2))
      rmSync(join(dir, 'counts', `${tool}.json`), {force: true})
    },
    calls(tool) {
      const all = readFileSync(callsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Call)
      return tool ? all.filter((c) => c.tool === tool) : all
    },
    clearCalls() {
      writeFileSync(callsFile, '')
    },
    remove(tool) {
      rmSync(join(binDir, tool), {force: true})
    },
    argvText() {
      return s
        .calls()
        .map((c) => [c.tool, ...c.argv].join(' '))
        .join('\n')
    },
  }
  for (const [tool, rules] of Object.entries(tools)) s.rules(tool, rules)
  return s
}

function findOnPath(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (d && existsSync(join(d, cmd))) return join(d, cmd)
  }
  return undefined
}
