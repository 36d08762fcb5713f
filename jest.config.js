// Two projects: `unit` is the README's test command; `install` packs the package and installs the
// tarball into an empty project without a compiler (slow, run by CI separately).
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.test.ts'], testPathIgnorePatterns: ['/install/'] },
    { ...common, displayName: 'install', testMatch: ['<rootDir>/test/install/**/*.test.ts'] },
  ],
  testTimeout: 120000,
};
