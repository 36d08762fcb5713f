// `unit` is the README's test command; `install` packs the package from a clean clone (prepack builds
// the prebuild) and installs the tarball into empty projects without a compiler, and checks the README's
// environment-variable table; `e2e` trains every preset on full MNIST via the CLI (both slower, run by
// CI after the unit tests).
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.test.ts'], testPathIgnorePatterns: ['/install/', '/e2e/'] },
    { ...common, displayName: 'install', testMatch: ['<rootDir>/test/install/**/*.test.ts'] },
    // The seeds' workflow on full MNIST through the CLI (minutes; run by CI after the unit tests).
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
  ],
  testTimeout: 120000,
};
