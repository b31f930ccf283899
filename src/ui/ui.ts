// Human output. Results go to stdout via the command; progress, spinners and warnings go to
// stderr, and are off under --json or when stderr is not a terminal (CI logs stay clean).
import chalk from 'chalk'
import type {Ora} from 'ora'
import {maskSecrets} from '../lib/secrets.js'

export interface Spinner {
  update(text: string): void
  succeed(text?: string): void
  fail(text?: string): void
  stop(): void
}

export class Ui {
  readonly json: boolean
  readonly verbose: boolean
  readonly interactive: boolean
  private active?: Ora

  constructor(opts: {json: boolean; verbose: boolean}) {
    this.json = opts.json
    this.verbose = opts.verbose
    this.interactive = Boolean(process.stderr.isTTY) && !opts.json && !process.env.CI
  }

  /** A progress line on stderr (never under --json). */
  info(message: string): void {
    if (this.json) return
    this.write(message)
  }

  warn(message: string): void {
    this.write(chalk.yellow(`! ${message}`))
  }

  debug(message: string): void {
    if (this.verbose) this.write(chalk.dim(message))
  }

  private write(line: string): void {
    const text = maskSecrets(line)
    if (this.active?.isSpinning) {
      this.active.clear()
      process.stderr.write(text + '\n')
      this.active.render()
    } else process.stderr.write(text + '\n')
  }

  async spinner(text: string): Promise<Spinner> {
    if (!this.interactive) {
      // No TTY: one plain line at start and one at the end, nothing animated.
      if (!this.json) process.stderr.write(maskSecrets(text) + '\n')
      const done = (mark: string) => (t?: string) => {
        if (!this.json && t) process.stderr.write(`${mark} ${maskSecrets(t)}\n`)
      }
      return {update: () => {}, succeed: done('✓'), fail: done('✗'), stop: () => {}}
    }
    const {default: ora} = await import('ora')
    const s = ora({text: maskSecrets(text), stream: process.stderr}).start()
    this.active = s
    return {
      update: (t) => {
        s.text = maskSecrets(t)
      },
      succeed: (t) => {
        s.succeed(t === undefined ? undefined : maskSecrets(t))
        this.active = undefined
      },
      fail: (t) => {
        s.fail(t === undefined ? undefined : maskSecrets(t))
        this.active = undefined
      },
      stop: () => {
        s.stop()
        this.active = undefined
      },
    }
  }

  stopAll(): void {
    this.active?.stop()
    this.active = undefined
  }
}

/** A plain, aligned text table (no borders: easy to grep, copy and diff). */
export function renderTable(rows: Record<string, unknown>[], columns: {key: string; header: string; align?: 'left' | 'right'}[]): string {
  const cell = (v: unknown) => (v === undefined || v === null ? '-' : String(v))
  const widths = columns.map((c) => Math.max(visibleLength(c.header), ...rows.map((r) => visibleLength(cell(r[c.key])))))
  const fmt = (values: string[]) =>
    values
      .map((v, i) => {
        const pad = ' '.repeat(Math.max(0, widths[i] - visibleLength(v)))
        return columns[i].align === 'right' ? pad + v : v + pad
      })
      .join('  ')
      .trimEnd()
  return [chalk.bold(fmt(columns.map((c) => c.header))), ...rows.map((r) => fmt(columns.map((c) => cell(r[c.key]))))].join('\n')
}

function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001B\[[0-9;]*m/g, '').length
}
