// ESLint over every TypeScript and JavaScript file, with typescript-eslint's type-aware
// recommended rules. The types come from tsconfig.check.json (TypeScript: src, tests,
// examples) and tsconfig.check-js.json (the scripts node runs as they are: bench, the VM
// guest, this file).
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "build/", "node_modules/", "test/vm/.cache/", "bench/out/"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        project: ["./tsconfig.check.json", "./tsconfig.check-js.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // `const { task: _task, ...fields } = options` is how a test builder drops a field.
      "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true, argsIgnorePattern: "^_" }],
    },
  },
  {
    // The scripts' unannotated parameters are `any` by choice (tsconfig.check-js.json), so
    // the unsafe-any rules would only restate that on every use.
    files: ["**/*.mjs", "**/*.js"],
    rules: {
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
);
