/** A run folder's generator back in PyTorch: a torch.save'd state_dict. */
import * as fs from 'node:fs';
import { savePytorch } from '../tensor/torch-save';
import { loadGeneratorModule } from '../store/generator';
import { readRunInfo } from '../store/run-dir';
import { checkExportTargets, checkFileArg, checkRunDirArg } from './targets';

/** Writes a run folder's generator (its latest checkpoint's) as a state_dict in torch.save's format. */
export function exportPytorch(runDir: string, file: string): { file: string; bytes: number; tensors: number } {
  checkRunDirArg('exportPytorch', runDir);
  checkExportTargets([{ path: checkFileArg('exportPytorch', file), label: 'exportPytorch: file' }]);
  const G = loadGeneratorModule(runDir, readRunInfo(runDir).config.preset, 'cpu');
  try {
    const sd = G.stateDict();
    savePytorch(sd, file);
    return { file, bytes: fs.statSync(file).size, tensors: Object.keys(sd).length };
  } finally {
    G.dispose();
  }
}
