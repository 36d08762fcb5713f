/** `libtorch-gan export RUN_DIR --onnx FILE`: a trained generator for use without LibTorch. */
import * as fs from 'node:fs';
import { checkExportTargets, exportOnnx, exportPytorch, ExportTargetError } from '../../export/index';
import { exportWeb, webTargets } from '../../export/web-page';
import { printable } from '../../util/printable';
import { readRunInfo } from '../../store/run-dir';
import { usesEmaGenerator } from '../../store/generator';
import { BIN, EXIT, intFlag, parseCommandArgs, stringFlag, UsageError, writeLine, type CliIO } from './common';

const NAME = 'export';

export const EXPORT_OPTIONS = {
  onnx: { type: 'string' },
  pytorch: { type: 'string' },
  web: { type: 'string' },
  opset: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const EXPORT_HELP = `Usage: ${BIN} export RUN_DIR [--onnx FILE [--opset N]] [--pytorch FILE] [--web DIR]

Writes the generator of RUN_DIR's latest checkpoint for use without LibTorch.

Options:
  --onnx FILE   an ONNX model (onnxruntime in Python, Node or a browser): inputs z [batch, ...noise]
                float32 and, for a conditional run, label [batch] int64; output images
                [batch, C, H, W] in the run's pixel range (the model's metadata names it and the noise)
  --opset N     ONNX opset, 13 to 23 (default 17)
  --pytorch FILE  G's state_dict as torch.save writes it: torch.load(FILE) in Python (weights_only
                works), then G.load_state_dict(...) on the preset's nn.Sequential
  --web DIR     DIR/index.html: a page that draws a grid of samples in the browser, offline (model
                and onnxruntime-web embedded; open it from disk), with new noise on a click and, for
                a conditional run, a class picker; needs onnxruntime-web (npm install onnxruntime-web)
  -h, --help    show this help

No output replaces a file of a run folder (any run's: a new file inside one is fine), a folder, or
another output of the same command: such a target is refused before anything is written (exit 2).`;

export async function exportCommand(args: string[], io: CliIO): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(NAME, args, EXPORT_OPTIONS, { positionals: 1 });
  if (v.help) {
    writeLine(io.stdout, EXPORT_HELP);
    return EXIT.OK;
  }
  const runDir = positionals[0];
  if (!runDir) throw new UsageError('missing RUN_DIR (the run folder, e.g. runs/run-1)', NAME);
  if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) throw new UsageError(`RUN_DIR: ${JSON.stringify(runDir)} is not a folder`, NAME);
  const onnx = stringFlag(NAME, 'onnx', v.onnx, 'a file name');
  const pytorch = stringFlag(NAME, 'pytorch', v.pytorch, 'a file name');
  const web = stringFlag(NAME, 'web', v.web, 'a folder name');
  if (onnx === undefined && pytorch === undefined && web === undefined)
    throw new UsageError('say what to write: --onnx FILE, --pytorch FILE or --web DIR', NAME);
  const opset = intFlag(NAME, 'opset', v.opset, 13, 23);
  try {
    return writeExports(runDir, { onnx, pytorch, web, opset }, io);
  } catch (e) {
    // a target that would replace a run's file or another output: the command line's mistake, nothing written
    if (e instanceof ExportTargetError) throw new UsageError(e.message, NAME);
    throw e;
  }
}

function writeExports(runDir: string, o: { onnx?: string; pytorch?: string; web?: string; opset?: number }, io: CliIO): number {
  const { onnx, pytorch, web, opset } = o;
  // every target at once, before anything is written: two outputs on one path are caught here
  checkExportTargets([
    ...(onnx !== undefined ? [{ path: onnx, label: '--onnx' }] : []),
    ...(pytorch !== undefined ? [{ path: pytorch, label: '--pytorch' }] : []),
    ...(web !== undefined ? webTargets(web, '--web') : []),
  ]);
  if (usesEmaGenerator(runDir, readRunInfo(runDir).config.preset))
    writeLine(io.stdout, 'Exporting the EMA generator (this run keeps an average of G: step spec ema)');
  if (pytorch !== undefined) {
    const r = exportPytorch(runDir, pytorch);
    writeLine(
      io.stdout,
      `Wrote ${printable(r.file)} (${(r.bytes / 1e6).toFixed(2)} MB): the generator's state_dict, ${r.tensors} tensors (torch.load reads it)`,
    );
  }
  if (web !== undefined) {
    const r = exportWeb(runDir, web);
    writeLine(io.stdout, `Wrote ${printable(r.page)} (${(r.bytes / 1e6).toFixed(1)} MB, self-contained: open it in a browser) and ${printable(r.model)}`);
  }
  if (onnx === undefined) return EXIT.OK;
  const r = exportOnnx(runDir, onnx, { opset });
  const label = r.classes ? `, label [batch] int64 in [0, ${r.classes})` : '';
  writeLine(
    io.stdout,
    `Wrote ${printable(r.file)} (${(r.bytes / 1e6).toFixed(2)} MB): z ~ ${r.noise.dist} [batch, ${r.noise.shape ?? r.noise.dim}]${label} -> images in ${r.range}`,
  );
  return EXIT.OK;
}
