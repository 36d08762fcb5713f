export { Optimizer, Adam, SGD, type AdamOptions, type SGDOptions, type OptimizerStateDict, type ParamGroup } from './optimizer';
// torch.optim.swa_utils (AveragedModel is a Module: optim/ sits above nn/)
export * as swaUtils from './swa-utils';
