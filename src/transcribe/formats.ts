// Transcript files from a result's segments: the same renderings as the server's own
// formats module (and openai-whisper's CLI), so a file looks the same whichever side made it.
import type {Format} from '../config/schema.js'
import type {Segment, TranscriptResult} from '../server/client.js'

export function timestamp(seconds: number, separator: ',' | '.'): string {
  let ms = Math.max(0, Math.round(seconds * 1000))
  const h = Math.floor(ms / 3_600_000)
  ms -= h * 3_600_000
  const m = Math.floor(ms / 60_000)
  ms -= m * 60_000
  const s = Math.floor(ms / 1000)
  ms -= s * 1000
  const p = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${p(h)}:${p(m)}:${p(s)}${separator}${p(ms, 3)}`
}

function line(seg: Segment): string {
  const text = seg.text.split(/\s+/).filter(Boolean).join(' ')
  return seg.speaker ? `[${seg.speaker}] ${text}` : text
}

function spoken(result: TranscriptResult): Segment[] {
  return (result.segments ?? []).filter((s) => s.text?.trim())
}

const renderers: Record<Format, (r: TranscriptResult) => string> = {
  txt: (r) => {
    const lines = spoken(r).map(line)
    return lines.length ? lines.join('\n') + '\n' : ''
  },
  srt: (r) =>
    spoken(r)
      .map((s, i) => `${i + 1}\n${timestamp(s.start, ',')} --> ${timestamp(s.end, ',')}\n${line(s)}\n`)
      .join('\n'),
  vtt: (r) => ['WEBVTT\n', ...spoken(r).map((s) => `${timestamp(s.start, '.')} --> ${timestamp(s.end, '.')}\n${line(s)}\n`)].join('\n'),
  tsv: (r) => ['start\tend\ttext', ...spoken(r).map((s) => `${Math.round(s.start * 1000)}\t${Math.round(s.end * 1000)}\t${line(s).replaceAll('\t', ' ')}`)].join('\n') + '\n',
  json: (r) => JSON.stringify(r, null, 2) + '\n',
}

export function render(result: TranscriptResult, format: Format): string {
  return renderers[format](result)
}
