/**
 * A small, strict argument parser for the subcommands: unknown flags are
 * errors. Built on node:util's parseArgs.
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { ConfigError } from "../util/errors.js";

export type Options = NonNullable<ParseArgsConfig["options"]>;
export interface ParsedCommand {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** Parses argv for a subcommand; throws a ConfigError naming the bad flag. */
export function parseCommand(command: string, argv: string[], options: Options, allowPositionals = true): ParsedCommand {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true }) as ParsedCommand;
  } catch (err) {
    throw new ConfigError("XA_CLI_ARGS", `${(err as Error).message}`, { hint: `run \`xalign ${command} --help\`` });
  }
}
