// Things to close when a command ends (HTTP agents, tunnels). Modules register themselves
// when first used, so the base command doesn't import (and pay for) undici or ssh2 up front.
const tasks = new Set<() => Promise<void> | void>()

export function onCleanup(fn: () => Promise<void> | void): () => void {
  tasks.add(fn)
  return () => tasks.delete(fn)
}

export async function runCleanup(): Promise<void> {
  const all = [...tasks]
  tasks.clear()
  await Promise.allSettled(all.map((fn) => fn()))
}
