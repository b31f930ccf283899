// Upload progress as one line: bytes sent, rate, ETA.
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

export class ProgressMeter {
  private readonly started = performance.now()

  line(label: string, sent: number, total: number): string {
    const secs = (performance.now() - this.started) / 1000
    const rate = secs > 0 ? sent / secs : 0
    const pct = total ? Math.floor((sent / total) * 100) : 0
    if (sent >= total) return `${label}  uploaded ${formatBytes(total)}, transcribing…`
    const eta = rate > 0 ? Math.ceil((total - sent) / rate) : undefined
    return `${label}  ${pct}% ${formatBytes(sent)}/${formatBytes(total)}  ${formatBytes(rate)}/s${eta === undefined ? '' : `  ETA ${eta}s`}`
  }
}
