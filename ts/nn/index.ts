export { Module } from './module';
// every layer class (a new one is exported with its file)
export * from './layers';
export * from './batchnorm';
export * from './conv';
export * as init from './init';
export { BCEWithLogitsLoss, BCELoss, MSELoss, CrossEntropyLoss } from './loss';
export { fromSpec, toNativeLayers, type NativeLayer } from './from-spec';
export type { ModuleSpec } from './spec';
export * as utils from './utils/index';
