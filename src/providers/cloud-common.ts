// Small pieces the gcloud, aws and k8s providers share: running a CLI during preflight
// without throwing, reading its JSON, and settings with their source.
import {ExternalError, InterruptedError, ToolMissingError, errorMessage} from '../lib/errors.js'
import type {RunResult} from '../exec/exec.js'
import type {Check, DeployOptions, PlanSetting, ProviderContext, ToolRequirement} from './types.js'

/** A tool call in preflight: never throws; a missing tool or a failure is data. */
export type Probe = {ok: true; result: RunResult} | {ok: false; missing: boolean; message: string; result?: RunResult}

export async function probe(ctx: ProviderContext, cmd: string, args: string[], timeoutMs = 30_000): Promise<Probe> {
  try {
    const result = await ctx.run(cmd, args, {allowFailure: true, timeoutMs})
    if (result.exitCode === 0) return {ok: true, result}
    return {ok: false, missing: false, message: lastLine(result.stderr || result.stdout) || `exit ${result.exitCode}`, result}
  } catch (error) {
    if (error instanceof ToolMissingError) return {ok: false, missing: true, message: error.message}
    if (error instanceof ExternalError) return {ok: false, missing: false, message: error.message}
    return {ok: false, missing: false, message: errorMessage(error)}
  }
}

export function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).at(-1)?.trim() ?? ''
}

/** JSON from a tool's stdout, or undefined when it is not JSON. */
export function parseJson<T = unknown>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T
  } catch {
    return undefined
  }
}

/** The ✓/✗ row for "is the tool installed", from `<tool> --version`-like output. */
export async function toolCheck(ctx: ProviderContext, tool: ToolRequirement, versionArgs: string[]): Promise<Check> {
  const p = await probe(ctx, tool.command, versionArgs)
  if (p.ok) {
    const text = (p.result.stdout || p.result.stderr).trim()
    // data.output keeps the whole answer: `kubectl version -o json` is pretty-printed over many lines.
    return {id: `tool:${tool.command}`, label: `${tool.command} installed`, ok: true, detail: text.split('\n')[0], data: {output: text}}
  }
  return {
    id: `tool:${tool.command}`,
    label: `${tool.command} installed`,
    ok: false,
    detail: p.missing ? 'not found on PATH' : p.message,
    fix: tool.installHint,
  }
}

/** Where a setting came from: a flag beats deploy.<provider> in jarvis.yaml beats the default. */
export function pick<T extends string | number | boolean>(
  key: string,
  opts: DeployOptions,
  flagValue: T | undefined,
  configValue: T | undefined,
  fallback: T,
): PlanSetting & {value: T} {
  if (flagValue !== undefined && opts.fromFlags.has(key)) return {key, value: flagValue, source: 'flag'}
  if (configValue !== undefined) return {key, value: configValue, source: 'config'}
  if (flagValue !== undefined) return {key, value: flagValue, source: 'default'}
  return {key, value: fallback, source: 'default'}
}

/** The data a passing check learned (e.g. the project id), typed at the use site. */
export function checkData<T>(checks: Check[], id: string, key: string): T | undefined {
  return checks.find((c) => c.id === id)?.data?.[key] as T | undefined
}

/** Timestamped image tag: each deploy gets a new one, so the platform rolls a new revision. */
export function imageTag(now = new Date()): string {
  return 'v' + now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
}

/** Wait, or stop early when the command is interrupted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new InterruptedError())
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(new InterruptedError())
    }
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}
