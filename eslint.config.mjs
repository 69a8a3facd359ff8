import nx from '@nx/eslint-plugin';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * Lint is here for the architecture, not for style (prettier owns layout): every project is tagged with its
 * layer in project.json, and a project may import only its own layer or lower ones. A new lib needs nothing
 * here, only the right `layer:*` tag; a project without a tag that a constraint names may import no project.
 */
const layers = ['base', 'artifact', 'store', 'deploy', 'promotion', 'app'];

const depConstraints = [
  ...layers.map((layer, i) => ({
    sourceTag: `layer:${layer}`,
    // type:testing is allowed by the graph because spec files live inside each project; the
    // no-restricted-imports block below keeps it out of production files.
    onlyDependOnLibsWithTags: [...layers.slice(0, i + 1).map((l) => `layer:${l}`), 'type:testing'],
  })),
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['*'] },
  { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: ['*'] },
];

/** Files that are test code without being specs: helpers and child processes that only specs load. */
const testCode = [
  '**/*.spec.ts',
  'tools/scripts/image-base.ts',
  'libs/testing/src/release/*.ts',
  'libs/store/src/publish-crash-child.ts',
  'libs/testing/**',
  'apps/express-api/e2e/**',
  'tools/e2e-adoption/**',
  'tools/ci-checks/**',
  'bench/**',
];

export default defineConfig(
  {
    ignores: ['**/node_modules/**', '**/dist/**', '**/coverage/**', '**/target/**', '**/.nx/**', '**/.buildonce/**', '**/tmp/**', '**/fixtures/**'],
  },
  {
    files: ['**/*.ts', '**/*.mts', '**/*.mjs'],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 2022, sourceType: 'module' },
    plugins: { '@nx': nx },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The sources already carry eslint-disable comments for it where a control character is meant.
      'no-control-regex': 'error',
      '@nx/enforce-module-boundaries': [
        'error',
        {
          depConstraints,
          // Every project's vitest.config.mts extends the root's shared settings, a file of no project.
          allow: ['^(\\.\\./)+vitest\\.shared\\.mts$'],
          // Specs import the testing lib, which may import any lib (it builds real artifacts): a lib's spec
          // importing testing and testing importing that lib is a cycle of test code, not of production code.
          ignoredCircularDependencies: [['tag:type:testing', '*']],
          // The lazy-loading check is for bundler code splitting; a spec's `await import()` in Node splits nothing.
          checkDynamicDependenciesExceptions: ['@buildonce/**'],
        },
      ],
    },
  },
  {
    files: ['**/*.ts', '**/*.mts'],
    ignores: testCode,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@buildonce/testing', message: 'test helpers are for spec files (*.spec.ts, *.int.spec.ts) and test code only.' }],
          patterns: [{ group: ['@buildonce/testing/*'], message: 'test helpers are for spec files (*.spec.ts, *.int.spec.ts) and test code only.' }],
        },
      ],
    },
  },
);
