/**
 * Plain-data description of a module tree. Presets are written in it, `nn.fromSpec` builds facade
 * modules from it, and the fused native trainer receives the same description together with the
 * modules' parameter tensors. Field names follow torch.nn's constructor arguments (camelCase).
 */
export type ModuleSpec =
  | { type: 'Linear'; inFeatures: number; outFeatures: number; bias?: boolean }
  | { type: 'ReLU' }
  | { type: 'LeakyReLU'; negativeSlope?: number }
  | { type: 'Tanh' }
  | { type: 'Sigmoid' }
  | { type: 'Dropout'; p?: number }
  | { type: 'BatchNorm1d' | 'BatchNorm2d'; numFeatures: number; eps?: number; momentum?: number; affine?: boolean; trackRunningStats?: boolean }
  | (ConvFields & { type: 'Conv2d'; padding?: number | [number, number] | 'same' | 'valid' })
  | (ConvFields & { type: 'ConvTranspose2d'; padding?: number | [number, number]; outputPadding?: number | [number, number] })
  | { type: 'Embedding'; numEmbeddings: number; embeddingDim: number; paddingIdx?: number | null }
  | { type: 'Flatten'; startDim?: number; endDim?: number }
  | { type: 'Unflatten'; dim: number; unflattenedSize: number[] }
  | { type: 'Sequential'; children: ModuleSpec[] };

/** What Conv2d and ConvTranspose2d specs share (torch.nn's constructor arguments). */
export interface ConvFields {
  inChannels: number;
  outChannels: number;
  kernelSize: number | [number, number];
  stride?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
  bias?: boolean;
}
