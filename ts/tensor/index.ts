export * from './dtype';
export { Tensor, callOp, type TensorLike } from './tensor';
export { scope, keep } from './scope';
export * as torch from './torch';
export * as safetensors from './safetensors';
