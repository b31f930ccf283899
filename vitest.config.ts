import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2-core CI machine; end-to-end suites start real servers.
    maxWorkers: 2,
    fileParallelism: true,
  },
})
