// One-line facts about a server from its /health and /info, for humans and --json alike.
import type {ServerHealth} from '../server/client.js'

export function describeServer(h: ServerHealth): {engine?: string; model?: string; device?: string; gpu?: string; version?: string} {
  const info = h.info
  const gpuText = info?.gpu_name
    ? `${info.gpu_name}${info.vram_total_mb ? ` (${Math.round(info.vram_total_mb / 1024)} GiB${info.cuda_version ? `, CUDA ${info.cuda_version}` : ''})` : ''}`
    : info || h.health
      ? 'none (CPU)'
      : undefined
  return {
    engine: info?.engine ?? h.health?.engine,
    model: info?.model ?? h.health?.model,
    device: [info?.device ?? h.health?.device, info?.compute_type].filter(Boolean).join(' ') || undefined,
    gpu: gpuText,
    version: info?.server_version,
  }
}
