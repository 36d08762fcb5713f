/** The process-wide settings a run applies before it trains. */
import * as os from 'node:os';
import * as torch from '../tensor/torch';
import { type ResolvedConfig } from '../config/config';

/**
 * Intra-op threads (more than the cores is allowed, with a warning) and flushing denormals: underflowing
 * values make CPU float math several-fold slower (seed000: 5 -> 13 ms/step), so runs flush them to zero
 * unless the config says otherwise. defaultThreads: the threads when the config sets none (a rank's share). Returns the flush mode before, which the run gives back at the end.
 */
export function applyRuntime(cfg: ResolvedConfig, warn: (e: Error) => void, defaultThreads?: number): boolean {
  if (cfg.threads === undefined && defaultThreads !== undefined) torch.setNumThreads(defaultThreads);
  if (cfg.threads !== undefined) {
    const cores = os.availableParallelism();
    if (cfg.threads > cores) {
      warn(new Error(`threads ${cfg.threads} is more than the ${cores} CPU cores here: LibTorch's threads will compete for them (usually slower)`));
    }
    torch.setNumThreads(cfg.threads);
  }
  const before = torch.getFlushDenormal();
  torch.setFlushDenormal(cfg.flushDenormal ?? true);
  return before;
}
