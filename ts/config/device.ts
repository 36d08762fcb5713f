/**
 * The one device resolution: what a run (config `device`, the Trainer, the CLI's --device flags) trains on
 * for 'auto' | 'cpu' | 'cuda', and whether this machine can use CUDA (and why not, in the addon's words).
 */
import { loadAddon } from '../native/addon';

export type DeviceOption = 'auto' | 'cpu' | 'cuda';

/** The default device request: CUDA when usable, else the CPU with the reason. */
export const DEFAULT_DEVICE: DeviceOption = 'auto';

/**
 * CUDA on this machine: usable, or the addon's reason it is not ("CUDA is not available: no NVIDIA driver
 * was found (...)"; cudaEnv() asks the addon). Without a reason, a generic one is given.
 */
export interface CudaEnv {
  cudaAvailable: boolean;
  cudaUnusable?: string;
}

/** The device a request trains on: `fallback` says why 'auto' chose the CPU. */
export interface DeviceChoice {
  device: 'cpu' | 'cuda';
  fallback?: string;
}

let cudaEnvOnce: CudaEnv | undefined;

/**
 * CUDA on this machine (resolveDevice's env): usable, or why not in the addon's words
 * (native/cuda_status.cc). Asked once: LibTorch's device count is fixed for the process's life.
 */
export function cudaEnv(): CudaEnv {
  if (!cudaEnvOnce) {
    const why = loadAddon().info().cudaUnavailable;
    cudaEnvOnce = why ? { cudaAvailable: false, cudaUnusable: why } : { cudaAvailable: true };
  }
  return cudaEnvOnce;
}

/**
 * The one device resolution (configs, the Trainer, the CLI): 'auto' (the default) is CUDA when usable, else
 * the CPU with the reason as `fallback`; 'cuda' where CUDA is unusable is `{ unusable: reason }` for the
 * caller's error (a config issue, a flag's usage error). `env` defaults to this machine's.
 */
export function resolveDevice(requested: DeviceOption = DEFAULT_DEVICE, env: CudaEnv = cudaEnv()): DeviceChoice | { unusable: string } {
  const why = env.cudaUnusable ?? 'CUDA is not available (no CUDA build of LibTorch or no usable GPU)';
  if (requested === 'cpu') return { device: 'cpu' };
  if (env.cudaAvailable) return { device: 'cuda' };
  return requested === 'auto' ? { device: 'cpu', fallback: why } : { unusable: why };
}
