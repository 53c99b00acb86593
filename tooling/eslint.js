import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The shared lint rules of every workspace. Each workspace's eslint.config.js calls
 * `lintConfig({ envModules })`, naming the files allowed to read the environment: everything
 * else gets its settings from those modules, so every variable is validated in one place.
 */

const ENV_ACCESS_MESSAGE =
  "Read the environment only in this package's config module (validated with zod) and pass the values on.";

/**
 * @param {object} options
 * @param {string[]} [options.envModules] globs of the files that may read process.env / import.meta.env
 * @param {boolean} [options.browser] code that runs in the browser (browser globals instead of node's)
 * @param {string[]} [options.ignores] extra paths to skip
 */
export function lintConfig({ envModules = [], browser = false, ignores = [] } = {}) {
  return [
    { ignores: ['**/node_modules/**', '**/dist/**', '**/.turbo/**', '**/coverage/**', ...ignores] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
      files: ['**/*.{ts,tsx,js,mjs}'],
      languageOptions: {
        ecmaVersion: 2023,
        sourceType: 'module',
        globals: browser ? { ...globals.browser } : { ...globals.node },
      },
      plugins: { 'import-x': importX },
      settings: {
        'import-x/extensions': ['.ts', '.tsx', '.js', '.mjs'],
        'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
        'import-x/resolver-next': [
          createNodeResolver({
            extensions: ['.ts', '.tsx', '.js', '.mjs', '.json', '.node'],
            extensionAlias: { '.js': ['.ts', '.tsx', '.js'] },
            conditionNames: ['import', 'types', 'default'],
          }),
        ],
      },
      rules: {
        'import-x/no-cycle': ['error', { ignoreExternal: true }],
        '@typescript-eslint/no-unused-vars': [
          'error',
          { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
        ],
        '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
        // The worker and its tests read terminal output on purpose: ANSI escapes (\x1b) are data there.
        'no-control-regex': 'off',
        'no-restricted-properties': [
          'error',
          { object: 'process', property: 'env', message: ENV_ACCESS_MESSAGE },
          { object: 'import.meta', property: 'env', message: ENV_ACCESS_MESSAGE },
        ],
        'no-restricted-syntax': [
          'error',
          {
            selector: 'MemberExpression[object.type="MetaProperty"][property.name="env"]',
            message: ENV_ACCESS_MESSAGE,
          },
        ],
      },
    },
    // Tests build the environments of the processes they start, so they may read and set it.
    ...[[...envModules, '**/*.test.ts', '**/*.test-support.ts', '**/test/**']].map((files) => ({
      files,
      rules: { 'no-restricted-properties': 'off', 'no-restricted-syntax': 'off' },
    })),
  ];
}
