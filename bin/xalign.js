#!/usr/bin/env node
// The `xalign` command: a thin launcher over the compiled CLI in dist/.
import { main } from "../dist/src/cli/index.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error && err.name !== "Error" ? `${err.name}: ${err.message}` : err);
    process.exitCode = 1;
  },
);
