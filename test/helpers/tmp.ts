import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll} from 'vitest'

/** A temp dir removed after the file's tests. */
export async function tempDir(prefix = 'jarvis-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  afterAll(() => rm(dir, {recursive: true, force: true}))
  return dir
}
