// The stand-in machinery itself: rules, recording, missing tools.
import {execa} from 'execa'
import {writeFileSync, chmodSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {createStandIns} from '../helpers/standins.js'
import {tempDir} from '../helpers/tmp.js'

describe('stand-ins', () => {
  it('answer from rules, record argv, stdin, cwd and files, and fall through after `times`', async () => {
    const s = await createStandIns({
      fly: [
        {match: ['apps', 'create'], stderr: 'Error: boom\n', exitCode: 1, times: 1},
        {match: ['apps', 'create'], stdout: {ID: 'x'}},
        {match: ['secrets', 'import'], stdinIncludes: 'A=1', stdout: 'ok\n'},
      ],
    })
    const dir = await tempDir()
    const f = join(dir, 'x.env')
    writeFileSync(f, 'K=V\n')
    chmodSync(f, 0o600)
    const run = (args: string[], input?: string) => execa('fly', args, {env: s.env(), extendEnv: false, cwd: dir, input, reject: false, stripFinalNewline: false, stdin: input === undefined ? 'ignore' : 'pipe'})
    const a = await run(['apps', 'create', 'app1'])
    expect(a.exitCode).toBe(1)
    expect(a.stderr).toContain('boom')
    const b = await run(['apps', 'create', 'app1'])
    expect(JSON.parse(String(b.stdout))).toEqual({ID: 'x'})
    const c = await run(['secrets', 'import', '--from', f], 'A=1\n')
    expect(c.stdout).toBe('ok\n')
    const d = await run(['nope'])
    expect(d.exitCode).toBe(97)
    const calls = s.calls('fly')
    expect(calls.map((x) => x.argv[0])).toEqual(['apps', 'apps', 'secrets', 'nope'])
    expect(calls[2].stdin).toBe('A=1\n')
    expect(calls[2].cwd).toBe(dir)
    expect(calls[2].files[f]).toEqual({mode: 0o600, content: 'K=V\n'})
    s.remove('fly')
    const e = await run(['version']).catch((err) => err)
    expect(e.code ?? e.exitCode).toBeTruthy()
  })
})
