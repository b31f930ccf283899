// Files users keep (transcripts, state, config) are written to a temp file beside the
// target and renamed over it, so an interrupted command never leaves half a file.
import {randomBytes} from 'node:crypto'
import {mkdir, rename, rm, writeFile} from 'node:fs/promises'
import {dirname, basename, join} from 'node:path'

export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
}

export async function writeFileAtomic(target: string, data: string | Uint8Array, opts: {mode?: number} = {}): Promise<void> {
  await mkdir(dirname(target), {recursive: true})
  const tmp = tempPathFor(target)
  try {
    await writeFile(tmp, data, {mode: opts.mode ?? 0o644})
    await rename(tmp, target)
  } catch (error) {
    await rm(tmp, {force: true})
    throw error
  }
}
