import * as torch from '../../ts/tensor/torch';

/** Why this machine cannot use CUDA, as the addon words it for any CUDA device argument (here a tensor's). */
export function nativeCudaReason(): string {
  try {
    torch.zeros([1], { device: 'cuda' });
  } catch (e) {
    return /CUDA is not available: (.+); use device 'cpu'$/.exec((e as Error).message)![1];
  }
  throw new Error('a CUDA tensor was made: this machine has CUDA');
}
