module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // With isolatedModules (tsconfig.json) ts-jest only transpiles, which keeps the tests fast;
    // type-checking is `npm run build` (tsc --noEmit), which scripts/cdk.sh runs first.
    '^.+\\.tsx?$': 'ts-jest',
  },
};
