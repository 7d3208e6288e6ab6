/**
 * The TypeScript tslab compiles cells with, adjusted for this project.
 *
 * tslab's converter hard-codes its compiler options (not strict, no
 * tsconfig) and emits no source maps. Its TypeScript's exports are
 * read-only getters, so we cannot patch them; instead, before tslab's
 * converter is loaded, the module cache entry of tslab's TypeScript is
 * replaced by an object that inherits everything from it and overrides two
 * functions:
 * - createWatchCompilerHost: merges the type-checking options of the
 *   project's tsconfig.json (strict, noUncheckedIndexedAccess, ...), maps
 *   the project's own package name to its type declarations, and turns on
 *   inline source maps;
 * - transpileModule (tslab's ESM -> CommonJS step): keeps both source maps so
 *   runtime stack frames can be mapped back to cell lines.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { installationRoot } from "../src/util/fs.js";

const require = createRequire(import.meta.url);

/** A module-level view of the bits of TypeScript's API we use (tslab ships TS 5.0). */
interface TsApi {
  version: string;
  ModuleKind: { CommonJS: number };
  readConfigFile(path: string, read: (p: string) => string | undefined): { config?: unknown; error?: unknown };
  parseJsonConfigFileContent(json: unknown, host: unknown, basePath: string): { options: Record<string, unknown> };
  sys: unknown;
  createWatchCompilerHost(...args: unknown[]): unknown;
  transpileModule(input: string, options: { compilerOptions?: Record<string, unknown>; fileName?: string }): TranspileOutput;
}
interface TranspileOutput {
  outputText: string;
  sourceMapText?: string;
  diagnostics?: unknown[];
}

/** The two source maps of one converted piece of code. */
export interface CellSourceMaps {
  /** TypeScript (with tslab's one-line prefix) -> ES module JavaScript. */
  tsToEsm: unknown;
  /** ES module JavaScript -> the CommonJS that runs. */
  esmToCjs: unknown;
}

/** The type-checking options taken from the project's tsconfig. */
const CHECK_OPTIONS = [
  "strict",
  "noImplicitAny",
  "strictNullChecks",
  "strictFunctionTypes",
  "strictBindCallApply",
  "strictPropertyInitialization",
  "noImplicitThis",
  "useUnknownInCatchVariables",
  "noUncheckedIndexedAccess",
  "noImplicitOverride",
  "noImplicitReturns",
  "noFallthroughCasesInSwitch",
  "exactOptionalPropertyTypes",
  "noPropertyAccessFromIndexSignature",
  "allowUnreachableCode",
  "allowUnusedLabels",
];

const INLINE_MAP = /\n?\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/;

export interface ProjectSettings {
  /** The tsconfig.json found, if any. */
  tsconfig: string | undefined;
  /** The options merged into tslab's. */
  options: Record<string, unknown>;
  /** The project's own package (name -> its declaration file), for `import ... from "<name>"`. */
  selfPackage: { name: string; types: string } | undefined;
  /**
   * xalign's installation: a bare module the notebook's folder cannot
   * resolve is required from here (`xalign` itself, and its dependencies).
   */
  installationFallback: string;
  /** No package.json at or above the notebook's folder: the installation stands in for the project. */
  outsideProject: boolean;
}

const mapsByOutput = new Map<string, CellSourceMaps>();
let installed: ProjectSettings | undefined;

function tslabTypeScriptPath(): string {
  const tslabRequire = createRequire(require.resolve("tslab/dist/converter.js"));
  return tslabRequire.resolve("@tslab/typescript-for-tslab");
}

/** The version of tslab's TypeScript, read without loading it. */
export function tslabTypeScriptVersion(): string {
  const packageJson = join(dirname(dirname(tslabTypeScriptPath())), "package.json");
  try {
    return (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version;
  } catch {
    return tslabTypeScript().version;
  }
}

/** The TypeScript module tslab compiles with. */
export function tslabTypeScript(): TsApi {
  return require(tslabTypeScriptPath()) as TsApi;
}

/**
 * Finds the tsconfig.json and package.json governing `dir` (nearest ancestor)
 * and returns the options to merge into tslab's. A folder outside any project
 * (a notebook copied out of the checkout) gets xalign's installation instead:
 * its tsconfig's checks, `import ... from "xalign"` against the installed
 * declarations, and other bare imports against the installation's
 * node_modules. A project that is not xalign and cannot resolve it itself
 * still gets `xalign` mapped to the installation's declarations.
 */
export function projectSettings(dir: string): ProjectSettings {
  const ts = tslabTypeScript();
  const installation = installationRoot();
  const outsideProject = findUp(dir, "package.json") === undefined;
  const installationTsconfig = join(installation, "tsconfig.json");
  const tsconfig = findUp(dir, "tsconfig.json") ?? (outsideProject && existsSync(installationTsconfig) ? installationTsconfig : undefined);
  const options: Record<string, unknown> = {};
  if (tsconfig) {
    const read = ts.readConfigFile(tsconfig, (p) => readFileSync(p, "utf8"));
    if (read.config) {
      const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, dirname(tsconfig));
      for (const key of CHECK_OPTIONS) if (parsed.options[key] !== undefined) options[key] = parsed.options[key];
    }
  }
  // tslab strips "use strict" from cells (so cells can redeclare let/const); strict would add it back.
  options.alwaysStrict = false;
  const selfPackage = findSelfPackage(outsideProject ? installation : dir);
  const paths: Record<string, string[]> = {};
  if (selfPackage) paths[selfPackage.name] = [selfPackage.types];
  const xalign = findSelfPackage(installation);
  if (xalign && !paths[xalign.name] && !resolvesFrom(dir, `${xalign.name}/package.json`)) paths[xalign.name] = [xalign.types];
  if (outsideProject) {
    // Bare imports resolve from xalign's installation, as at run time.
    const modules = join(installation, "node_modules");
    paths["*"] = [join(modules, "*"), join(modules, "@types", "*")];
  }
  const first = Object.values(paths)[0]?.[0];
  if (first) {
    options.baseUrl = dirname(first);
    options.paths = paths;
  }
  return { tsconfig, options, selfPackage, installationFallback: installation, outsideProject };
}

/** Whether Node resolves `id` from a module in `dir`. */
function resolvesFrom(dir: string, id: string): boolean {
  try {
    createRequire(join(resolve(dir), "noop.js")).resolve(id);
    return true;
  } catch {
    return false;
  }
}

function findUp(dir: string, name: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const candidate = join(d, name);
    if (existsSync(candidate)) return candidate;
    if (dirname(d) === d) return undefined;
  }
}

function findSelfPackage(dir: string): { name: string; types: string } | undefined {
  const pkgPath = findUp(dir, "package.json");
  if (!pkgPath) return undefined;
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as {
    name?: string;
    types?: string;
    exports?: { "."?: { types?: string } | string };
  };
  const dotExport = pkg.exports?.["."];
  const types = (typeof dotExport === "object" ? dotExport.types : undefined) ?? pkg.types;
  if (!pkg.name || !types) return undefined;
  return { name: pkg.name, types: resolve(dirname(pkgPath), types) };
}

/**
 * Installs the adjusted TypeScript for tslab; call before tslab's converter
 * is first loaded, once per process. Returns the settings in effect.
 */
export function installProjectTypeScript(projectDir: string): ProjectSettings {
  if (installed) return installed;
  const settings = projectSettings(projectDir);
  const path = tslabTypeScriptPath();
  const ts = require(path) as TsApi;
  const cached = require.cache[path];
  if (!cached) throw new Error(`tslab's TypeScript (${path}) is not in the module cache`);
  // tslab imports TypeScript with __importStar, which copies own properties only.
  const adjusted = {} as TsApi;
  for (const key of Object.keys(ts)) {
    Object.defineProperty(adjusted, key, {
      get: () => (ts as unknown as Record<string, unknown>)[key],
      enumerable: true,
      configurable: true,
    });
  }
  const createWatchCompilerHost = (rootFiles: unknown, options: Record<string, unknown>, ...rest: unknown[]): unknown => {
    const host = ts.createWatchCompilerHost(rootFiles, { ...options, ...settings.options, inlineSourceMap: true }, ...rest) as object;
    // tslab assigns afterProgramCreate to grab the builder; hand it one whose emit also fixes shorthand properties.
    let afterProgramCreate: ((builder: Builder) => void) | undefined;
    Object.defineProperty(host, "afterProgramCreate", {
      configurable: true,
      set: (callback: (builder: Builder) => void) => {
        afterProgramCreate = callback;
      },
      get: () => (builder: Builder) => afterProgramCreate?.(withShorthandFix(ts, builder)),
    });
    return host;
  };
  const transpileModule: TsApi["transpileModule"] = (input, transpileOptions) => {
    const match = INLINE_MAP.exec(input);
    if (!match?.[1] || transpileOptions.compilerOptions?.module !== ts.ModuleKind.CommonJS) {
      return ts.transpileModule(input, transpileOptions);
    }
    const source = input.slice(0, match.index);
    const out = ts.transpileModule(source, {
      ...transpileOptions,
      compilerOptions: { ...transpileOptions.compilerOptions, sourceMap: true },
    });
    const outputText = out.outputText.replace(/\n?\/\/# sourceMappingURL=.*\s*$/, "\n");
    if (out.sourceMapText) {
      mapsByOutput.set(outputText, {
        tsToEsm: JSON.parse(Buffer.from(match[1], "base64").toString("utf8")),
        esmToCjs: JSON.parse(out.sourceMapText),
      });
    }
    return { ...out, outputText };
  };
  Object.defineProperty(adjusted, "createWatchCompilerHost", { value: createWatchCompilerHost, enumerable: true });
  Object.defineProperty(adjusted, "transpileModule", { value: transpileModule, enumerable: true });
  cached.exports = adjusted;
  installed = settings;
  return settings;
}

/** The parts of TypeScript's builder program and AST API the shorthand fix uses. */
interface Builder {
  emit(file: unknown, write: unknown, cancel: unknown, onlyDts: unknown, transformers?: { before?: unknown[] }): unknown;
  getProgram(): { getTypeChecker(): Checker };
}
interface Checker {
  getShorthandAssignmentValueSymbol(node: unknown): { declarations?: { getSourceFile(): { fileName: string } }[] } | undefined;
}
interface AstApi {
  isShorthandPropertyAssignment(node: unknown): node is { name: { text: string }; objectAssignmentInitializer?: unknown };
  visitEachChild<T>(node: T, visit: (node: unknown) => unknown, context: unknown): T;
  factory: {
    createPropertyAssignment(name: unknown, value: unknown): unknown;
    createPropertyAccessExpression(target: unknown, name: string): unknown;
    createIdentifier(name: string): unknown;
  };
}

/**
 * tslab rewrites a reference to an earlier cell's variable `x` as
 * `exports.x`, but misses the shorthand `{ x }` (it asks the checker for the
 * property's symbol, not the variable's), so `{ x }` throws "x is not
 * defined". A transformer run before tslab's writes `{ x: exports.x }`.
 */
function withShorthandFix(tsModule: TsApi, builder: Builder): Builder {
  const ts = tsModule as unknown as AstApi;
  const emit = builder.emit.bind(builder);
  builder.emit = (file, write, cancel, onlyDts, transformers) => {
    const checker = builder.getProgram().getTypeChecker();
    const fromEarlierCell = (node: unknown): boolean =>
      (checker.getShorthandAssignmentValueSymbol(node)?.declarations ?? []).some((d) =>
        d.getSourceFile().fileName.endsWith("__prev__.d.ts"),
      );
    const before = (context: unknown) => (root: unknown) => {
      const visit = (node: unknown): unknown => {
        if (ts.isShorthandPropertyAssignment(node) && !node.objectAssignmentInitializer && fromEarlierCell(node)) {
          const name = node.name.text;
          return ts.factory.createPropertyAssignment(
            name,
            ts.factory.createPropertyAccessExpression(ts.factory.createIdentifier("exports"), name),
          );
        }
        return ts.visitEachChild(node, visit, context);
      };
      return visit(root);
    };
    return emit(file, write, cancel, onlyDts, { ...transformers, before: [before, ...(transformers?.before ?? [])] });
  };
  return builder;
}

/** The source maps recorded for a converted output (and forgets them). */
export function takeSourceMaps(output: string): CellSourceMaps | undefined {
  const maps = mapsByOutput.get(output);
  mapsByOutput.delete(output);
  // Outputs of side files (local .ts imports) are never taken; keep the map small.
  if (mapsByOutput.size > 64) mapsByOutput.clear();
  return maps;
}
