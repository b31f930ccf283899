// `gpu-server bench`: a standard speech sample (the bundled LibriVox clips joined into one
// 16 kHz mono WAV) sent several times; realtime factor and throughput, appended to history.
import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {appendRun, type RunRecord} from '../history/history.js'
import {UserError} from '../lib/errors.js'
import {packageRoot} from '../lib/paths.js'
import {checkServer, transcribeSync, type ServerTarget} from '../server/client.js'

export function sampleDir(): string {
  return join(packageRoot(), 'test', 'fixtures', 'audio', 'librivox')
}

/** PCM data of a canonical 44-byte-header WAV, or of the 'data' chunk when there are others. */
function pcmOf(wav: Buffer): Buffer {
  let off = 12
  while (off + 8 <= wav.length) {
    const id = wav.toString('ascii', off, off + 4)
    const size = wav.readUInt32LE(off + 4)
    if (id === 'data') return wav.subarray(off + 8, off + 8 + size)
    off += 8 + size + (size % 2)
  }
  throw new Error('no data chunk')
}

function wavHeader(dataBytes: number, rate = 16_000): Buffer {
  const h = Buffer.alloc(44)
  h.write('RIFF', 0, 'ascii')
  h.writeUInt32LE(36 + dataBytes, 4)
  h.write('WAVEfmt ', 8, 'ascii')
  h.writeUInt32LE(16, 16)
  h.writeUInt16LE(1, 20) // PCM
  h.writeUInt16LE(1, 22) // mono
  h.writeUInt32LE(rate, 24)
  h.writeUInt32LE(rate * 2, 28)
  h.writeUInt16LE(2, 32)
  h.writeUInt16LE(16, 34)
  h.write('data', 36, 'ascii')
  h.writeUInt32LE(dataBytes, 40)
  return h
}

/** Writes the standard sample (all clips, `repeat` times over) and returns its path and length. */
export async function writeSample(dir: string, repeat = 1): Promise<{path: string; seconds: number}> {
  const files = (await readdir(sampleDir())).filter((f) => f.endsWith('.wav')).sort()
  if (!files.length) throw new UserError(`No speech sample found in ${sampleDir()}`, {code: 'sample_missing'})
  const pcm = Buffer.concat(await Promise.all(files.map(async (f) => pcmOf(await readFile(join(sampleDir(), f))))))
  const body = Buffer.concat(Array.from({length: repeat}, () => pcm))
  const path = join(dir, 'jarvis-bench-sample.wav')
  await writeFile(path, Buffer.concat([wavHeader(body.length), body]))
  return {path, seconds: body.length / 32_000}
}

export interface BenchRun {
  wallSeconds: number
  processingSeconds?: number
  realtimeFactor: number
}

export interface BenchResult {
  url: string
  engine?: string
  model?: string
  device?: string
  gpu?: string
  audioSeconds: number
  runs: BenchRun[]
  medianRealtimeFactor: number
  /** Audio hours transcribed per wall-clock hour, one request at a time. */
  audioHoursPerHour: number
}

export async function runBench(target: ServerTarget & {name: string}, opts: {runs: number; repeat: number; signal?: AbortSignal; onRun?: (i: number, r: BenchRun) => void}): Promise<BenchResult> {
  const health = await checkServer(target, {timeoutMs: 5000, signal: opts.signal})
  if (!health.ok) throw new UserError(`${target.url} is not healthy: ${health.reason}`, {code: 'server_unhealthy', suggestion: 'Start it with `jarvis gpu-server start`, or pass --url.'})
  const dir = await mkdtemp(join(tmpdir(), 'jarvis-bench-'))
  try {
    const sample = await writeSample(dir, opts.repeat)
    // One unmeasured request first: the first call pays lazy loading (align models, CUDA kernels).
    await transcribeSync(target, sample.path, {diarize: false}, {signal: opts.signal})
    const runs: BenchRun[] = []
    for (let i = 0; i < opts.runs; i++) {
      const t = performance.now()
      const r = await transcribeSync(target, sample.path, {diarize: false}, {signal: opts.signal})
      const wall = (performance.now() - t) / 1000
      const run = {wallSeconds: wall, processingSeconds: r.processing_time, realtimeFactor: (r.duration ?? sample.seconds) / wall}
      runs.push(run)
      opts.onRun?.(i, run)
    }
    const sorted = runs.map((r) => r.realtimeFactor).sort((a, b) => a - b)
    const median = sorted[Math.floor(sorted.length / 2)]
    const info = health.info
    const result: BenchResult = {
      url: target.url,
      engine: info?.engine ?? health.health?.engine,
      model: info?.model ?? health.health?.model,
      device: info?.device ?? health.health?.device,
      gpu: info?.gpu_name ?? undefined,
      audioSeconds: sample.seconds,
      runs,
      medianRealtimeFactor: median,
      audioHoursPerHour: median,
    }
    const record: RunRecord = {
      at: new Date().toISOString(),
      source: 'bench',
      backend: target.name,
      url: target.url,
      engine: result.engine,
      model: result.model,
      device: result.device,
      gpu: result.gpu,
      audioSeconds: sample.seconds * runs.length,
      processingSeconds: runs.reduce((s, r) => s + r.wallSeconds, 0),
      realtimeFactor: median,
    }
    await appendRun(record)
    return result
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}
