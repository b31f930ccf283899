import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parseJson, runCli} from '../helpers/cli.js'
import {tempDir} from '../helpers/tmp.js'

describe('jarvis config', () => {
  it('reports every problem with file:line:column and key path, exit 1', async () => {
    const dir = await tempDir()
    await writeFile(
      join(dir, 'jarvis.yaml'),
      ['version: 1', 'backends:', '  - { name: laptop, kind: external, url: not-a-url }', '  - { name: x, kind: nope }', '  - name: v', '    kind: vast', '    ssh: { host: h, port: 99999 }', '    extra: 1', ''].join('\n'),
    )
    const r = await runCli(['config', 'validate'], {cwd: dir})
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('jarvis.yaml:3:42 backends[0].url: expected an http(s) URL')
    expect(r.stderr).toContain('jarvis.yaml:4:22 backends[1].kind: expected kind to be one of')
    expect(r.stderr).toContain('jarvis.yaml:7:27 backends[2].ssh.port:')
    expect(r.stderr).toContain('jarvis.yaml:8:5 backends[2]: unknown key "extra"')
    expect(r.stdout).toBe('')
  })

  it('--json puts the error envelope on stdout', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'jarvis.yaml'), 'version: 2\n')
    const r = await runCli(['config', 'validate', '--json'], {cwd: dir})
    expect(r.exitCode).toBe(1)
    const out = parseJson(r)
    expect(out.error.code).toBe('config_invalid')
    expect(out.error.problems[0]).toMatchObject({line: 1, column: 10, path: 'version'})
  })

  it('resolves ${VAR} (even unquoted in a flow map) and never shows the secret', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'jarvis.yaml'), 'version: 1\nbackends:\n  - { name: laptop, kind: external, url: http://127.0.0.1:9, apiKey: ${MY_KEY} }\n')
    const ok = await runCli(['config', 'validate'], {cwd: dir, env: {MY_KEY: 'super-secret-value'}})
    expect(ok.exitCode).toBe(0)
    const shown = await runCli(['config', 'show', '--json'], {cwd: dir, env: {MY_KEY: 'super-secret-value'}})
    expect(shown.exitCode).toBe(0)
    expect(shown.stdout).not.toContain('super-secret-value')
    expect(parseJson(shown).backends[0].apiKey).toBe('****')
    const missing = await runCli(['config', 'validate'], {cwd: dir, env: {MY_KEY: undefined}})
    expect(missing.exitCode).toBe(1)
    expect(missing.stderr).toContain('jarvis.yaml:3:')
    expect(missing.stderr).toContain('environment variable MY_KEY is not set')
  })

  it('an unknown flag is a usage error, exit 2', async () => {
    const r = await runCli(['config', 'show', '--bogus'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('--bogus')
  })
})
