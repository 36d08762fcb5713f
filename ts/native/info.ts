/** Runtime information: package and LibTorch versions, CUDA, threads and BLAS. */
import { packageRoot, packageVersion } from '../util/package';
import * as path from 'node:path';
import { describeBuild, listBinaries, pinnedLibTorch, prebuildTag, prebuildVersions, supportedLibTorch } from './compat';
import { libtorchInfo, loadAddon, loadedBinary } from './load';

export interface RuntimeInfo {
  packageVersion: string;
  node: string;
  libtorch: {
    version: string;
    fullVersion: string;
    source: string;
    path: string;
    cudaBuild: boolean;
    cudaVersion: string | null;
    cxx11Abi: number;
    /** The LibTorch version the package pins (package.json "libtorch.version"): its default, what setup.sh installs. */
    pinned: string;
    /** The LibTorch minor versions the package supports ("2.11" ... "2.15"). */
    supported: string[];
    /** The LibTorch versions it ships prebuilt binaries for. */
    prebuilds: string[];
  };
  /** The binary loaded: a source build or a prebuild (tag: its prebuilds/ subfolder), and the others here. */
  binary: { file: string; kind: string; tag: string; builtWith: string; cudaGraphs: boolean | null; others: string[] };
  cuda: { isAvailable: boolean; deviceCount: number; devices: string[]; graphs: boolean };
  /** c10d's NCCL backend: usable in this build with the NCCL LibTorch loads, its version, or why not. */
  nccl: { available: boolean; version: string | null; missing: string };
  threads: { intraOp: number; interOp: number };
  blas: string;
}

export function info(): RuntimeInfo {
  const addon = loadAddon();
  const lt = libtorchInfo();
  const n = addon.info();
  const bin = loadedBinary();
  return {
    packageVersion: packageVersion(),
    node: process.version,
    libtorch: {
      version: lt.version,
      fullVersion: lt.fullVersion,
      source: lt.source,
      path: lt.root,
      cudaBuild: n.cudaBuild,
      cudaVersion: lt.cudaVersion,
      cxx11Abi: lt.cxx11Abi,
      pinned: pinnedLibTorch(packageRoot),
      supported: supportedLibTorch(packageRoot),
      prebuilds: prebuildVersions(packageRoot),
    },
    binary: {
      file: bin.file,
      kind: bin.kind,
      tag: bin.kind === 'prebuild' ? path.basename(path.dirname(bin.file)) : bin.info ? prebuildTag(bin.info) : '',
      builtWith: n.builtWith,
      cudaGraphs: bin.info?.cudaGraphs ?? null,
      others: listBinaries(packageRoot)
        .filter((b) => b.file !== bin.file)
        .map((b) => `${path.relative(packageRoot, b.file)} (${b.kind}, ${b.info ? describeBuild(b.info) : b.infoError})`),
    },
    cuda: { isAvailable: n.cudaAvailable, deviceCount: n.cudaDeviceCount, devices: n.cudaDevices, graphs: n.cudaGraphs },
    nccl: { available: n.ncclAvailable, version: n.ncclVersion, missing: n.ncclMissing },
    threads: { intraOp: n.numThreads, interOp: n.numInteropThreads },
    blas: n.blas,
  };
}

export function formatInfo(i: RuntimeInfo): string {
  return [
    `libtorch-gan ${i.packageVersion} (Node ${i.node})`,
    `LibTorch     ${i.libtorch.fullVersion} (${i.libtorch.source}) at ${i.libtorch.path}`,
    `  CUDA build ${i.libtorch.cudaBuild ? `yes (CUDA ${i.libtorch.cudaVersion ?? '?'})` : 'no'}, _GLIBCXX_USE_CXX11_ABI=${i.libtorch.cxx11Abi}`,
    `  supported  ${i.libtorch.supported.join(', ')} ` + `(prebuilt for ${i.libtorch.prebuilds.join(', ')}; default ${i.libtorch.pinned})`,
    `binary       ${i.binary.file}`,
    `  loaded     ${i.binary.kind === 'prebuild' ? `the prebuild ${i.binary.tag}` : 'a source build'}, built with LibTorch ${i.binary.builtWith}; CUDA graphs ${i.cuda.graphs ? 'compiled in' : 'not compiled in'}`,
    ...i.binary.others.map((o) => `  also here  ${o}`),
    `CUDA         ${i.cuda.isAvailable ? `available: ${i.cuda.deviceCount} device(s)` : 'not available'}`,
    ...i.cuda.devices.map((d, k) => `  cuda:${k}     ${d}`),
    `NCCL         ${i.nccl.available ? `compiled in (NCCL ${i.nccl.version ?? '?'}): backend 'nccl' for data-parallel CUDA runs` : `not available: ${i.nccl.missing}`}`,
    `threads      ${i.threads.intraOp} intra-op, ${i.threads.interOp} inter-op`,
    `BLAS         ${i.blas}`,
  ].join('\n');
}
