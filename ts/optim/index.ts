export { Optimizer, Adam, SGD, type AdamOptions, type SGDOptions, type OptimizerStateDict, type ParamGroup } from './optimizer';
