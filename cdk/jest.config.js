module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Type-checking is `npm run build` (tsc --noEmit); the tests only transpile, which keeps
    // them fast (aws-cdk-lib's types are large).
    '^.+\\.tsx?$': ['ts-jest', { isolatedModules: true }],
  },
};
