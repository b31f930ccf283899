// Flags shared by the gpu-server commands.
import {Flags} from '@oclif/core'

export const portFlag = Flags.integer({description: 'TCP port of the local server', min: 1, max: 65535})

export const serverFlags = {
  host: Flags.string({description: 'address to listen on (beyond loopback the server requires --api-key)', default: '127.0.0.1'}),
  port: Flags.integer({description: 'TCP port', default: 8000, min: 1, max: 65535}),
  engine: Flags.string({description: 'whisperx (GPU or CPU, needs PyTorch) or pocketsphinx (CPU, English, offline; for smoke tests). auto = whisperx', options: ['auto', 'whisperx', 'pocketsphinx'], default: 'auto'}),
  model: Flags.string({description: 'Whisper model, e.g. large-v3, large-v3-turbo, medium', env: 'WHISPER_MODEL'}),
  device: Flags.string({description: 'auto, cuda, cuda:N or cpu'}),
  'compute-type': Flags.string({description: 'float16 (GPU), int8 (CPU), int8_float16, float32; default by device'}),
  'batch-size': Flags.integer({description: 'batched-inference batch size (whisperx)', min: 1}),
  'api-key': Flags.string({description: 'key clients must send (X-API-Key); prefer the env var, argv is visible to other users', env: 'EXTERNAL_GPU_API_KEY'}),
  'hf-token': Flags.string({description: 'Hugging Face token for diarization (pyannote)', env: 'HUGGINGFACE_TOKEN'}),
  python: Flags.string({description: 'Python 3.10+ used to create the server venv (only when it is created; delete the venv in the cache dir to switch)'}),
  timeout: Flags.integer({description: 'seconds to wait for /health (first runs download the model)', default: 900, min: 1}),
}
