/** A trained generator for use without libtorch-gan: ONNX, a web page, PyTorch files; and where each may write. */
export { exportOnnx, OnnxExportError, type ExportedOnnx, type ExportOnnxOptions } from './onnx';
export { exportPytorch } from './pytorch';
export { checkExportTargets, ExportTargetError, type ExportTarget } from './targets';
export { exportWeb } from './web-page';
