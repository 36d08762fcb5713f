{
  # node-gyp fallback for the native addon: used by scripts/install.js when a C++ compiler is present
  # but cmake is not. It mirrors CMakeLists.txt (the primary build, driven by cmake-js): the same
  # sources, and LibTorch's location, version, ABI and C++ standard from the same locator the runtime
  # uses (lib/native/locate-libtorch.js, so `npm run build:ts` must have run). Always build with local
  # headers: node-gyp rebuild --nodedir=<node's prefix, e.g. /usr>  (scripts/install.js does this).
  # No precompiled header here (gyp's make generator has none), so it compiles slower than cmake-js.
  'variables': {
    'lt_cuda_include_dirs': '<!(node lib/native/locate-libtorch.js --field cudaIncludeDirs)',
    'lt_lib_dir': '<!(node lib/native/locate-libtorch.js --field libDir)',
    'lt_version': '<!(node lib/native/locate-libtorch.js --field version)',
    'lt_cuda': '<!(node lib/native/locate-libtorch.js --field cuda)',
    'lt_abi': '<!(node lib/native/locate-libtorch.js --field cxx11Abi)',
    'lt_cxx_standard': '<!(node lib/native/locate-libtorch.js --field cxxStandard)',
  },
  'targets': [
    {
      'target_name': 'libtorch_gan',
      # gyp drops a leading "lib" from module names; keep the file name the loader and prebuildify expect.
      'product_name': 'libtorch_gan',
      'sources': [ '<!@(node -p "require(\'fs\').readdirSync(\'native\').filter(f => f.endsWith(\'.cc\')).sort().map(f => \'native/\' + f).join(\' \')")' ],
      'include_dirs': [
        '<!(node -p "require(\'node-addon-api\').include_dir")',
        '<!@(node lib/native/locate-libtorch.js --field includeDirs)',
        '<!@(node lib/native/locate-libtorch.js --field cudaIncludeDirs)',
        'third_party/gloo',  # gloo's headers for c10d's ProcessGroupGloo.hpp (see CMakeLists.txt)
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        '_GLIBCXX_USE_CXX11_ABI=<(lt_abi)',
        'LTG_LIBTORCH_VERSION="<(lt_version)"',
        'USE_C10D_GLOO',
      ],
      # node's common.gypi compiles C++ as gnu++17 without RTTI and exceptions; LibTorch needs all three.
      'cflags!': [ '-fno-exceptions', '-Wextra' ],
      'cflags_cc!': [ '-fno-rtti', '-fno-exceptions', '-std=gnu++17' ],
      'cflags': [ '-fexceptions', '-fvisibility=hidden', '-fno-math-errno' ],  # -fno-math-errno: the fused Adam kernel vectorizes (as CMake sets for optim.cc)
      'cflags_cc': [ '-std=c++<(lt_cxx_standard)', '-frtti', '-fexceptions' ],
      'ldflags': [
        '-Wl,--enable-new-dtags',
        '-Wl,-rpath,<(lt_lib_dir)',
      ],
      # Link LibTorch's libraries by full path; --no-as-needed keeps libtorch_cuda loaded so its kernels register.
      'libraries': [
        '-Wl,--no-as-needed',
        '<!@(node -p "const i = require(\'./lib/native/locate-libtorch.js\').locateLibTorch(); i.libraries.map(l => i.libDir + \'/lib\' + l + \'.so\').join(\' \')")',
        '-Wl,--as-needed',
      ],
      'conditions': [
        [ '"<(lt_cuda)"=="true"', { 'defines': [ 'LTG_CUDA_BUILD=1' ] }, { 'defines': [ 'LTG_CUDA_BUILD=0' ] } ],
        [ '"<(lt_cuda)"=="true" and "<(lt_cuda_include_dirs)"!=""', { 'defines': [ 'LTG_WITH_CUDA=1' ] } ],
      ],
    },
  ],
}
