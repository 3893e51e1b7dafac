// Lint for every TypeScript and JavaScript file of the project (src, webview, test, scripts,
// recipes): typescript-eslint's recommended rules on the TypeScript, with types where they catch
// real mistakes (floating promises); formatting is prettier's business, not eslint's.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-test/**', 'dist-bench/**', 'node_modules/**', '.pal-studio/**', 'models/**', 'out/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      // `_name` marks a value kept on purpose (a destructured field left out, a callback's slot).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  { files: ['webview/**/*.ts'], languageOptions: { globals: { ...globals.browser } } },
  { files: ['test/e2e/**/*.mjs'], languageOptions: { globals: { ...globals.browser, ...globals.node } } },
  prettier,
);
