export { Module } from './module';
export { Linear, ReLU, LeakyReLU, Tanh, Sigmoid, Dropout, BatchNorm1d, Flatten, Unflatten, Sequential } from './layers';
export { BCEWithLogitsLoss, BCELoss, MSELoss } from './loss';
export { fromSpec, toNativeLayers, type NativeLayer } from './from-spec';
export type { ModuleSpec } from './spec';
