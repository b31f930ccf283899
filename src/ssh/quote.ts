// A remote SSH command is one string that the remote user's shell parses, so every argument
// is quoted explicitly (POSIX sh rules): callers pass argv arrays, never a shell string.

/** Quote one word for a POSIX shell: safe characters as is, everything else in '…' with ' escaped. */
export function shellQuote(arg: string): string {
  if (arg === '') return "''"
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg
  return `'${arg.replaceAll("'", `'\\''`)}'`
}

/** argv → one command line for `sh -c` on the remote side. */
export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('empty command')
  return argv.map((a) => shellQuote(a)).join(' ')
}
