// Runs the built CLI (bin/run.js → dist/) as a real child process, like a user would.
import {execa} from 'execa'
import {fileURLToPath} from 'node:url'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const binPath = `${repoRoot}/bin/run.js`

export interface CliResult {
  exitCode: number
  stdout: string
  stderr: string
}

export async function runCli(
  args: string[],
  opts: {cwd?: string; env?: Record<string, string | undefined>; input?: string; timeoutMs?: number} = {},
): Promise<CliResult> {
  const r = await execa(process.execPath, [binPath, ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: {NO_COLOR: '1', FORCE_COLOR: '0', ...opts.env},
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
    reject: false,
    timeout: opts.timeoutMs ?? 60_000,
  })
  return {exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr)}
}

export function parseJson<T = any>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.exitCode}):\n${r.stdout}\n--- stderr:\n${r.stderr}`)
  }
}
