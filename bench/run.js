#!/usr/bin/env node
// `npm run bench`: every benchmark, each printing ratios against a reference measured in
// the same run. BENCH_ONLY=startup,upload,... picks some.
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const py = existsSync(`${root}/gpu-server/.venv/bin/python`) ? `${root}/gpu-server/.venv/bin/python` : 'python3'
const all = {
  startup: [process.execPath, ['bench/cli/startup.mjs']],
  upload: [process.execPath, ['bench/cli/upload.mjs']],
  failover: [process.execPath, ['bench/cli/failover.mjs']],
  tunnel: [process.execPath, ['bench/tunnel/throughput.mjs']],
  'server-overhead': [py, ['bench/server/overhead.py']],
  'server-health': [py, ['bench/server/health_latency.py']],
}
const only = process.env.BENCH_ONLY?.split(',')
let failed = 0
for (const [name, [cmd, args]] of Object.entries(all)) {
  if (only && !only.includes(name)) continue
  if (!existsSync(`${root}/${args[0]}`)) {
    console.log(`${name}: ${args[0]} not found, skipped`)
    continue
  }
  console.log(`\n== ${name}`)
  const r = spawnSync(cmd, args, {cwd: root, stdio: 'inherit'})
  if (r.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
