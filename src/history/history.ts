// Measured transcription speed, one JSON line per run, appended by `transcribe` and
// `gpu-server bench`; read by `cost estimate --measured`.
import {appendFile, mkdir, readFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {userDataDir} from '../lib/paths.js'

export interface RunRecord {
  at: string
  source: 'transcribe' | 'bench'
  backend: string
  url?: string
  engine?: string
  model?: string
  device?: string
  gpu?: string
  audioSeconds: number
  processingSeconds: number
  /** audioSeconds / processingSeconds: 20 means 20× faster than real time. */
  realtimeFactor: number
}

export function historyPath(): string {
  return process.env.JARVIS_HISTORY_FILE ?? join(userDataDir(), 'history.jsonl')
}

export async function appendRun(rec: RunRecord): Promise<void> {
  const path = historyPath()
  await mkdir(dirname(path), {recursive: true})
  // One short line per write: appends of < PIPE_BUF are not interleaved between processes.
  await appendFile(path, JSON.stringify(rec) + '\n')
}

export async function readRuns(): Promise<RunRecord[]> {
  let text: string
  try {
    text = await readFile(historyPath(), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const out: RunRecord[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      const r = JSON.parse(line) as RunRecord
      if (r.audioSeconds > 0 && r.processingSeconds > 0) out.push(r)
    } catch {
      // A torn last line (killed mid-write) is skipped, not fatal.
    }
  }
  return out
}
