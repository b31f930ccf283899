// Where a file's transcripts go, whether a previous run already wrote them all, and
// writing them atomically (temp file + rename: an interrupted run never leaves half a file).
import {stat} from 'node:fs/promises'
import {basename, dirname, extname, join, resolve} from 'node:path'
import type {Format} from '../config/schema.js'
import {writeFileAtomic} from '../lib/atomic.js'
import type {TranscriptResult} from '../server/client.js'
import {render} from './formats.js'

export function outputPaths(input: string, formats: readonly Format[], outputDir?: string): Record<Format, string> {
  const dir = outputDir ? resolve(outputDir) : dirname(resolve(input))
  const stem = basename(input, extname(input))
  return Object.fromEntries(formats.map((f) => [f, join(dir, `${stem}.${f}`)])) as Record<Format, string>
}

/** Complete = every requested format exists, is non-empty, and is newer than the input. */
export async function outputsComplete(input: string, paths: Record<string, string>): Promise<boolean> {
  const src = await stat(input)
  for (const p of Object.values(paths)) {
    const s = await stat(p).catch(() => undefined)
    if (!s || s.size === 0 || s.mtimeMs < src.mtimeMs) return false
  }
  return true
}

export async function writeOutputs(result: TranscriptResult, paths: Record<Format, string>): Promise<string[]> {
  // Render everything first: a rendering error must not leave some formats written.
  const rendered = (Object.entries(paths) as [Format, string][]).map(([f, p]) => [p, render(result, f)] as const)
  for (const [p, text] of rendered) await writeFileAtomic(p, text)
  return rendered.map(([p]) => p)
}
