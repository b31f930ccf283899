import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {repoRoot} from './cli.js'

export const librivoxDir = join(repoRoot, 'test/fixtures/audio/librivox')

/** The LibriVox clips with their reference transcripts. */
export function librivoxClips(): {name: string; path: string; text: string}[] {
  return readFileSync(join(librivoxDir, 'transcripts.tsv'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [name, text] = l.split('\t')
      return {name, path: join(librivoxDir, `${name}.wav`), text}
    })
}
