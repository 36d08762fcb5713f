export { Module } from './module';
export { Linear, ReLU, LeakyReLU, Tanh, Sigmoid, Dropout, BatchNorm1d, BatchNorm2d, Embedding, Flatten, Unflatten, MaxPool2d, Sequential } from './layers';
export { Conv2d, ConvTranspose2d } from './conv';
export * as init from './init';
export { BCEWithLogitsLoss, BCELoss, MSELoss, CrossEntropyLoss } from './loss';
export { fromSpec, toNativeLayers, type NativeLayer } from './from-spec';
export type { ModuleSpec } from './spec';
