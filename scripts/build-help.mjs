// Renders every command's --help once, with oclif itself, into dist/help.json so that
// bin/run.js can answer `jarvis ... --help` without loading oclif (see bin/run.js).
import {execFile} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {Config} from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)
const config = await Config.load(root)
const ids = ['', ...config.commands.filter((c) => !c.hidden).map((c) => c.id), ...config.topics.map((t) => t.name)]
const unique = [...new Set(ids)]
const help = {}
const env = {...process.env, JARVIS_NO_FAST_PATH: '1', COLUMNS: '100', NO_COLOR: '1', FORCE_COLOR: '0'}
// A few at a time: the machine may have two cores.
for (let i = 0; i < unique.length; i += 4) {
  await Promise.all(
    unique.slice(i, i + 4).map(async (id) => {
      const words = id ? id.split(':') : []
      const {stdout} = await run(process.execPath, [`${root}/bin/run.js`, ...words, '--help'], {env})
      help[words.join(' ')] = stdout
    }),
  )
}
writeFileSync(`${root}/dist/help.json`, JSON.stringify(help))
