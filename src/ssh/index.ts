// The SSH wrapper's public surface: the only way the rest of jarvis reaches ssh2.
// Import lazily (`await import('../ssh/index.js')`) from commands: ssh2 is not small.
export {connectSsh, nativeCryptoAvailable, type ConnectOptions, type SshInteraction} from './connect.js'
export {SshSession, type ExecOptions, type ExecResult, type RemoteCommand, type UploadOptions, type UploadProgress} from './session.js'
export {openTunnel, type ActiveForward, type Tunnel, type TunnelEvent, type TunnelOptions, type TunnelStats} from './tunnel.js'
export {resolveSshTarget, defaultSshPaths, describeHop, type ResolvedTarget, type ResolvedHop, type SshTargetSpec, type SshPaths} from './resolve.js'
export {parseForwardSpec, formatAddress, ForwardSpecError, type Forward} from './forward-spec.js'
export {HOST_KEY_POLICIES, type HostKeyPolicy, type UnknownHostKey} from './host-key.js'
export {SshError} from './errors.js'
export {shellQuote, shellCommand} from './quote.js'
export {fingerprint} from './known-hosts.js'
export {terminalInteraction} from './prompt.js'
