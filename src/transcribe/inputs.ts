// Checking input files before any upload, so each bad one gets a clear reason.
import {access, constants, stat} from 'node:fs/promises'
import {resolve} from 'node:path'

export interface InputCheck {
  path: string
  ok: boolean
  size?: number
  reason?: string
}

export async function checkInput(path: string): Promise<InputCheck> {
  const abs = resolve(path)
  let s
  try {
    s = await stat(abs)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return {path: abs, ok: false, reason: code === 'ENOENT' ? 'no such file' : `cannot read it (${code})`}
  }
  if (s.isDirectory()) return {path: abs, ok: false, reason: 'is a directory (pass the audio files inside it, e.g. dir/*.mp3)'}
  if (!s.isFile()) return {path: abs, ok: false, reason: 'is not a regular file'}
  try {
    await access(abs, constants.R_OK)
  } catch {
    return {path: abs, ok: false, reason: 'permission denied (not readable)'}
  }
  if (s.size === 0) return {path: abs, ok: false, reason: 'is empty (0 bytes)'}
  return {path: abs, ok: true, size: s.size}
}
