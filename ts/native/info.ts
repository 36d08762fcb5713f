/** Runtime information: package and LibTorch versions, CUDA, threads and BLAS. */
import { packageRoot, packageVersion } from '../util/package';
import { pinnedLibTorch } from './compat';
import { findBinary, libtorchInfo, loadAddon } from './load';

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
    /** The LibTorch version the package pins (package.json "libtorch.version"): what its prebuilt binary is for. */
    pinned: string;
  };
  binary: { file: string; kind: string; builtWith: string };
  cuda: { isAvailable: boolean; deviceCount: number; devices: string[]; graphs: boolean };
  threads: { intraOp: number; interOp: number };
  blas: string;
}

export function info(): RuntimeInfo {
  const addon = loadAddon();
  const lt = libtorchInfo();
  const n = addon.info();
  const bin = findBinary();
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
    },
    binary: { file: bin?.file ?? '', kind: bin?.kind ?? '', builtWith: n.builtWith },
    cuda: { isAvailable: n.cudaAvailable, deviceCount: n.cudaDeviceCount, devices: n.cudaDevices, graphs: n.cudaGraphs },
    threads: { intraOp: n.numThreads, interOp: n.numInteropThreads },
    blas: n.blas,
  };
}

export function formatInfo(i: RuntimeInfo): string {
  return [
    `libtorch-gan ${i.packageVersion} (Node ${i.node})`,
    `LibTorch     ${i.libtorch.fullVersion} (${i.libtorch.source}) at ${i.libtorch.path}`,
    `  CUDA build ${i.libtorch.cudaBuild ? `yes (CUDA ${i.libtorch.cudaVersion ?? '?'})` : 'no'}, _GLIBCXX_USE_CXX11_ABI=${i.libtorch.cxx11Abi}`,
    `  pinned     ${i.libtorch.pinned} (the prebuilt binary's LibTorch; ` +
      (i.libtorch.pinned === i.libtorch.version ? 'the one found matches)' : 'the one found differs: only a source build runs with it)'),
    `binary       ${i.binary.file} (${i.binary.kind}, built with LibTorch ${i.binary.builtWith}; CUDA graphs ${i.cuda.graphs ? 'compiled in' : 'not compiled in'})`,
    `CUDA         ${i.cuda.isAvailable ? `available: ${i.cuda.deviceCount} device(s)` : 'not available'}`,
    ...i.cuda.devices.map((d, k) => `  cuda:${k}     ${d}`),
    `threads      ${i.threads.intraOp} intra-op, ${i.threads.interOp} inter-op`,
    `BLAS         ${i.blas}`,
  ].join('\n');
}
